using System.Diagnostics;
using Confluent.Kafka;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Benchmarks;

/// <summary>
/// The ingest measurement behind <c>prefonline bench ingest</c>: validated records/s consumed from a Kafka-protocol
/// broker (librdkafka's mock cluster on 127.0.0.1) through the worker's real path — consumer-group
/// <see cref="KafkaRecordSource"/>, <see cref="ValidatingIntake"/> (offset tracking, strict validation with the
/// duplicate window, dead-letter routing armed) — beside kcat's raw consume rate of the same records on
/// the same broker, in interleaved rounds. A reusable measurement: the benchmark framework wraps it
/// (PrefOnline.Worker's IngestBenchmark), <see cref="RunAsync"/> runs it stand-alone.
/// </summary>
/// <remarks>
/// Fairness: both sides are timed from their first record to their last, so kcat's process start and
/// our group join (a few seconds on the mock broker) are excluded alike; kcat prints only offsets
/// (<c>-f '%o\n'</c>) so its output costs little. Each of our rounds uses a fresh consumer group reading
/// from the beginning. Records are <c>prefonline.preference.v1</c> pairs with unique ids.
/// </remarks>
public sealed class IngestMeasurement : IAsyncDisposable
{
    public const string OursSide = "prefonline";
    public const string KcatSide = "kcat";
    /// <summary>The topic holding the benchmark records.</summary>
    public const string Topic = "bench.feedback";
    private const string DeadLetterTopic = "bench.dlq";

    private readonly IngestMeasurementOptions options;
    private readonly MockKafkaCluster cluster;
    private readonly string kcat;
    private int round;

    private IngestMeasurement(IngestMeasurementOptions options, MockKafkaCluster cluster, string kcat, int recordBytes)
    {
        this.options = options;
        this.cluster = cluster;
        this.kcat = kcat;
        RecordBytes = recordBytes;
    }

    /// <summary>Average size of one benchmark record, bytes.</summary>
    public int RecordBytes { get; }

    /// <summary>Records in <see cref="Topic"/>; a round reads them all.</summary>
    public int Records => options.Records;

    /// <summary>The mock broker's bootstrap address (for an external reader such as kcat).</summary>
    public string BootstrapServers => cluster.BootstrapServers;

    /// <summary>The resolved kcat executable.</summary>
    public string KcatPath => kcat;

    /// <summary>Starts the mock broker and fills the topic.</summary>
    /// <exception cref="InvalidOperationException">kcat is missing (the message holds the install command).</exception>
    public static async Task<IngestMeasurement> PrepareAsync(IngestMeasurementOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid ingest benchmark options: " + string.Join("; ", problems), nameof(options));
        var kcat = ResolveExecutable(options.Kcat) ?? throw new InvalidOperationException($"kcat is required for the ingest benchmark but '{options.Kcat}' was not found; install it with: apt-get install -y kcat");
        var cluster = MockKafkaCluster.Start();
        try
        {
            cluster.CreateTopic(Topic, options.Partitions);
            cluster.CreateTopic(DeadLetterTopic, 1);
            var records = BuildRecords(options.TextChars, options.Records);
            await Task.Run(() => Produce(cluster.BootstrapServers, options.Partitions, records), cancellationToken).ConfigureAwait(false);
            return new IngestMeasurement(options, cluster, kcat, (int)records.Average(r => r.Length));
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="rounds"/> rounds of each side, interleaved (kcat, ours, kcat, ours...), plus the validator alone.</summary>
    public async Task<IngestMeasurementReport> RunAsync(int rounds, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        var results = new List<IngestRound>();
        for (var i = 0; i < rounds; i++)
        {
            results.Add(await RunKcatRoundAsync(cancellationToken).ConfigureAwait(false));
            results.Add(await RunOursRoundAsync(cancellationToken).ConfigureAwait(false));
        }
        return new IngestMeasurementReport(results, MeasureValidatorOnly(options, TimeSpan.FromSeconds(1)), RecordBytes);
    }

    /// <summary>One pass of our side over the whole topic, through a fresh consumer group.</summary>
    public async Task<IngestRound> RunOursRoundAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RoundTimeout);
        using var metrics = new StreamingMetrics();
        var tracker = new OffsetTracker();
        var sourceOptions = new KafkaSourceOptions { BootstrapServers = cluster.BootstrapServers, GroupId = $"bench-{Environment.ProcessId}-{++round}", Topics = { Topic } };
        await using var source = KafkaRecordSource.Start(sourceOptions, tracker);
        await using var sink = new CountingSink();
        var intake = new ValidatingIntake(source, new RecordValidator(new ValidationLimits(), SchemaNames.FeedbackTopic), new DeadLetterRouter(sink, DeadLetterTopic, metrics), tracker, metrics);
        long count = 0;
        var clock = new Stopwatch();
        await foreach (var item in intake.ReadAllAsync(timeout.Token).ConfigureAwait(false))
        {
            if (count == 0) clock.Start();
            tracker.Complete(item.Source);
            if (++count == options.Records) break;
        }
        clock.Stop();
        if (sink.Produced > 0) throw new InvalidOperationException($"{sink.Produced} benchmark records were dead-lettered; the benchmark data is broken");
        return new IngestRound(OursSide, count - 1, clock.Elapsed.TotalSeconds);
    }

    /// <summary>One pass of kcat (simple consumer, every partition from the beginning to the end) over the whole topic.</summary>
    public async Task<IngestRound> RunKcatRoundAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RoundTimeout);
        var start = new ProcessStartInfo(kcat) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-C", "-b", cluster.BootstrapServers, "-t", Topic, "-o", "beginning", "-e", "-q", "-f", "%o\n" }) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start kcat");
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        var stdout = process.StandardOutput.BaseStream;
        var buffer = new byte[1 << 16];
        long lines = 0;
        var clock = new Stopwatch();
        try
        {
            int read;
            while ((read = await stdout.ReadAsync(buffer, timeout.Token).ConfigureAwait(false)) > 0)
            {
                if (!clock.IsRunning) clock.Start();
                lines += buffer.AsSpan(0, read).Count((byte)'\n');
            }
            clock.Stop();
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        if (process.ExitCode != 0) throw new InvalidOperationException($"kcat exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}");
        if (lines != options.Records) throw new InvalidOperationException($"kcat read {lines} records, expected {options.Records}");
        // The first record starts the clock, so the timed work is the remaining records on both sides.
        return new IngestRound(KcatSide, lines - 1, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Records/s of <see cref="RecordValidator"/> alone on the benchmark's records (no transport).</summary>
    public static double MeasureValidatorOnly(IngestMeasurementOptions options, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(options);
        var records = BuildRecords(options.TextChars, 10_000);
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.FeedbackTopic);
        foreach (var record in records.Take(1000)) Check(validator.Validate(record)); // warm-up (JIT)
        long count = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            foreach (var record in records) Check(validator.Validate(record));
            count += records.Count;
        }
        return count / clock.Elapsed.TotalSeconds;

        static void Check(ValidationResult result)
        {
            if (!result.IsValid) throw new InvalidOperationException($"benchmark record refused: {result.Failure}");
        }
    }

    public ValueTask DisposeAsync()
    {
        cluster.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The benchmark's records: <paramref name="count"/> serialized preference pairs with unique ids and texts of <paramref name="textChars"/> characters (seeded).</summary>
    public static List<byte[]> BuildRecords(int textChars, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(textChars, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var random = new Random(42);
        string Text(int n)
        {
            var chars = new char[textChars];
            for (var i = 0; i < chars.Length; i++) chars[i] = (char)('a' + random.Next(26));
            chars[0] = (char)('A' + n % 26);
            return new string(chars);
        }
        var records = new List<byte[]>(count);
        for (var i = 0; i < count; i++)
        {
            records.Add(RecordSerializer.Serialize(new PreferenceRecord($"bench-l-{i:D9}", Text(i), Text(i + 1), Text(i + 2), new PreferenceRolloutIds($"bench-r-{i:D9}-a", $"bench-r-{i:D9}-b"))));
        }
        return records;
    }

    private static void Produce(string bootstrap, int partitions, List<byte[]> records)
    {
        KafkaNative.EnsureLoaded();
        var config = new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true, LingerMs = 20, BatchSize = 1_000_000, QueueBufferingMaxMessages = 1_000_000, Partitioner = Partitioner.Murmur2Random };
        using (var producer = new ProducerBuilder<byte[], byte[]>(config).Build())
        {
            // Keyed, so the records spread evenly over the partitions.
            for (var i = 0; i < records.Count; i++) producer.Produce(Topic, new Message<byte[], byte[]> { Key = BitConverter.GetBytes(i), Value = records[i] });
            if (producer.Flush(TimeSpan.FromMinutes(2)) > 0) throw new InvalidOperationException("producing the benchmark records timed out");
        }
        // The mock broker keeps only a few MB per partition (its built-in retention): refuse to measure
        // over a topic that silently lost its oldest records.
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "bench-watermarks" }).Build();
        long total = 0;
        for (var p = 0; p < partitions; p++)
        {
            var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition(Topic, p), TimeSpan.FromSeconds(30));
            if (watermarks.Low.Value != 0) throw new InvalidOperationException($"the mock broker dropped the oldest records of partition {p} (retention); use fewer or smaller records or more partitions");
            total += watermarks.High.Value;
        }
        if (total != records.Count) throw new InvalidOperationException($"the topic holds {total} records, expected {records.Count}");
    }

    private static string? ResolveExecutable(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? name : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>A dead-letter sink that only counts: any dead letter means the benchmark data is broken.</summary>
    private sealed class CountingSink : IRecordSink
    {
        public int Produced { get; private set; }

        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
        {
            Produced++;
            return Task.FromResult(new DeliveredRecord(new TopicPartitionId(record.Topic, 0), Produced - 1));
        }

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
