using System.Globalization;

namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// The most memory one <see cref="KafkaRecordSource"/> can hold, by part, from its effective settings
/// (<see cref="KafkaSourceOptions.Memory"/>; docs/OPERATIONS.md, "Memory of the Kafka consumers", gives the figures):
/// <list type="bullet">
/// <item>managed, handed over and waiting for the caller: <see cref="BufferedBytes"/> of records plus
/// <see cref="KafkaSourceOptions.RecordOverheadBytes"/> for each of at most <see cref="BufferedRecords"/>;</item>
/// <item>managed, the one record being converted: a kept record is at most <see cref="MaxRecordBytes"/>; an oversized one
/// costs its headers, which Confluent.Kafka copies out whole (at most one response, <see cref="ResponseBytes"/>), never its value;</item>
/// <item>native, in librdkafka: the prefetch queue (<see cref="QueuedBytes"/>), which one fetch may overshoot
/// (<see cref="FetchBytes"/>), and one response being received per broker connection (<see cref="ResponseBytes"/> each).</item>
/// </list>
/// </summary>
public sealed record KafkaSourceMemory(long BufferedBytes, int BufferedRecords, long MaxRecordBytes, long QueuedBytes, long FetchBytes, long ResponseBytes)
{
    /// <summary>Managed bytes: buffered records with their overhead, and the record being converted.</summary>
    public long ManagedBytes => BufferedBytes + (long)BufferedRecords * KafkaSourceOptions.RecordOverheadBytes + MaxRecordBytes + ResponseBytes;

    /// <summary>librdkafka's bytes with <paramref name="brokers"/> broker connections.</summary>
    public long NativeBytes(int brokers) => QueuedBytes + FetchBytes + Math.Max(1, brokers) * ResponseBytes;

    /// <summary>The whole bound with <paramref name="brokers"/> broker connections.</summary>
    public long WorstCaseBytes(int brokers) => ManagedBytes + NativeBytes(brokers);

    /// <summary>One line for the start-up log.</summary>
    public string Describe(int brokers) => string.Create(CultureInfo.InvariantCulture,
        $"at most {Mib(WorstCaseBytes(brokers))} MiB with {brokers} broker(s): records waiting {Mib(BufferedBytes)} MiB (≤ {BufferedRecords} records), librdkafka queue {Mib(QueuedBytes)} MiB, fetch {Mib(FetchBytes)} MiB, response ≤ {Mib(ResponseBytes)} MiB per broker, records over {MaxRecordBytes} bytes never copied");

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.#", CultureInfo.InvariantCulture);
}
