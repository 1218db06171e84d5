using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>Shared settings and raw-client helpers for tests against the mock cluster.</summary>
public static class KafkaTestKit
{
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Snappy reconnects so outage tests recover in seconds, not the defaults' tens of seconds.</summary>
    public static Dictionary<string, string> FastReconnect() => new()
    {
        ["reconnect.backoff.ms"] = "50",
        ["reconnect.backoff.max.ms"] = "500",
        ["socket.connection.setup.timeout.ms"] = "2000",
        ["topic.metadata.refresh.interval.ms"] = "1000",
    };

    public static KafkaSourceOptions Source(string bootstrap, string group, params string[] topics)
    {
        var options = new KafkaSourceOptions { BootstrapServers = bootstrap, GroupId = group, StatisticsInterval = TimeSpan.FromMilliseconds(200) };
        foreach (var topic in topics) options.Topics.Add(topic);
        foreach (var (k, v) in FastReconnect()) options.Settings[k] = v;
        options.Settings["session.timeout.ms"] = "6000";
        options.Settings["heartbeat.interval.ms"] = "500";
        return options;
    }

    public static KafkaSinkOptions Sink(string bootstrap)
    {
        var options = new KafkaSinkOptions { BootstrapServers = bootstrap, StatisticsInterval = TimeSpan.FromMilliseconds(200) };
        foreach (var (k, v) in FastReconnect()) options.Settings[k] = v;
        return options;
    }

    /// <summary>Reads every record of <paramref name="topic"/> from the beginning with a group-less consumer until <paramref name="expected"/> arrived.</summary>
    public static List<ConsumeResult<byte[], byte[]>> ReadAll(string bootstrap, string topic, int partitions, int expected, TimeSpan? timeout = null)
    {
        // Blocking by design (a plain client loop); call it off the test's synchronisation context.
        KafkaNative.EnsureLoaded();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "test-reader-" + Guid.NewGuid().ToString("N"), EnableAutoCommit = false }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var results = new List<ConsumeResult<byte[], byte[]>>();
        var deadline = DateTime.UtcNow + (timeout ?? TestTimeout);
        while (results.Count < expected)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"read {results.Count} of {expected} records from {topic}");
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is { IsPartitionEOF: false, Message: not null }) results.Add(result);
        }
        return results;
    }

    /// <summary>Produces raw bytes with a plain Confluent producer (no validation, no resilience: the "outside world").</summary>
    public static void ProduceRaw(string bootstrap, string topic, IEnumerable<(byte[]? Key, byte[] Value)> records)
    {
        KafkaNative.EnsureLoaded();
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true, LingerMs = 2 }).Build();
        foreach (var (key, value) in records) producer.Produce(topic, new Message<byte[], byte[]> { Key = key!, Value = value });
        if (producer.Flush(TestTimeout) > 0) throw new TimeoutException("raw produce did not complete");
    }

    public static string Header(ConsumeResult<byte[], byte[]> result, string name) =>
        System.Text.Encoding.UTF8.GetString(result.Message.Headers.GetLastBytes(name));

    public static TopicPartitionId Id(string topic, int partition) => new(topic, partition);
}
