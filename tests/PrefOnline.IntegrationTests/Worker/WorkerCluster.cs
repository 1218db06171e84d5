using Confluent.Kafka;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// librdkafka's mock cluster on 127.0.0.1 with the worker's five topics, and the test's own real
/// Confluent.Kafka producer (the "outside world": users asking prompts and giving labels).
/// </summary>
public sealed class WorkerCluster : IAsyncDisposable
{
    public const string Prompts = "prefonline.prompts";
    public const string Feedback = "prefonline.feedback";
    public const string Rollouts = "prefonline.rollouts";
    public const string Policy = "prefonline.policy";
    public const string DeadLetter = "prefonline.dlq";
    public const int InputPartitions = 2;

    private readonly IProducer<byte[]?, byte[]> producer;
    private readonly IConsumer<Ignore, Ignore> offsetQueries;
    private int pending;
    private Exception? deliveryError;

    private WorkerCluster(MockKafkaCluster cluster)
    {
        Cluster = cluster;
        var config = new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true, LingerMs = 2, MessageTimeoutMs = 120_000 };
        foreach (var (key, value) in FastReconnect()) config.Set(key, value);
        producer = new ProducerBuilder<byte[]?, byte[]>(config).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
        var query = new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "test-offset-queries", EnableAutoCommit = false };
        foreach (var (key, value) in FastReconnect()) query.Set(key, value);
        offsetQueries = new ConsumerBuilder<Ignore, Ignore>(query).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
    }

    public MockKafkaCluster Cluster { get; }

    public string BootstrapServers => Cluster.BootstrapServers;

    public static WorkerCluster Start()
    {
        KafkaNative.EnsureLoaded();
        var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Prompts, InputPartitions);
        cluster.CreateTopic(Feedback, InputPartitions);
        cluster.CreateTopic(Rollouts, InputPartitions);
        cluster.CreateTopic(Policy, 1);
        cluster.CreateTopic(DeadLetter, 1);
        return new WorkerCluster(cluster);
    }

    /// <summary>Reconnect within a second of a broker's return (the defaults take tens of seconds), for every client here and in the worker.</summary>
    public static Dictionary<string, string> FastReconnect() => new()
    {
        ["reconnect.backoff.ms"] = "50",
        ["reconnect.backoff.max.ms"] = "500",
        ["socket.connection.setup.timeout.ms"] = "2000",
        ["topic.metadata.refresh.interval.ms"] = "1000",
    };

    /// <summary>Produces a contract record to one partition (fire and forget; <see cref="FlushAsync"/> waits for every delivery).</summary>
    public void Produce(string topic, int partition, StreamRecord record, string? key = null) =>
        ProduceRaw(topic, partition, RecordSerializer.Serialize(record), key);

    /// <summary>
    /// Users asking: <paramref name="prompts"/> in turn, one every <paramref name="every"/>, over the prompt topic's
    /// partitions, with ids <c>{idPrefix}{i:D5}</c>, until <paramref name="stop"/>. The delay paces the users; nothing
    /// waits on it.
    /// </summary>
    public async Task AskAsync(string idPrefix, IReadOnlyList<string> prompts, TimeSpan every, CancellationToken stop)
    {
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            Produce(Prompts, i % InputPartitions, new PromptRecord($"{idPrefix}{i:D5}", prompts[i % prompts.Count]));
            try
            {
                await Task.Delay(every, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Produces raw bytes (anything at all: the corpus of bad records) to one partition.</summary>
    public void ProduceRaw(string topic, int partition, byte[] value, string? key = null)
    {
        Interlocked.Increment(ref pending);
        producer.Produce(new TopicPartition(topic, new Partition(partition)),
            new Message<byte[]?, byte[]> { Key = key is null ? null : System.Text.Encoding.UTF8.GetBytes(key), Value = value },
            report =>
            {
                if (report.Error.IsError) deliveryError ??= new InvalidOperationException($"test producer: {topic}[{partition}]: {report.Error.Reason}");
                Interlocked.Decrement(ref pending);
            });
    }

    /// <summary>Waits until every produced record is acknowledged (delivery reports arrive on librdkafka's thread).</summary>
    public async Task FlushAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Volatile.Read(ref pending) > 0)
        {
            producer.Poll(TimeSpan.Zero);
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{pending} produced records not acknowledged after {timeout}");
            await Task.Delay(20);
        }
        if (deliveryError is { } error) throw error;
    }

    /// <summary>The group's committed offsets (null: nothing committed) for every partition of <paramref name="topic"/>.</summary>
    public IReadOnlyDictionary<int, long?> Committed(string group, string topic, int partitions)
    {
        // OffsetFetch for any group id: this client never joins the group, it only asks the coordinator.
        var admin = new ConsumerConfig { BootstrapServers = BootstrapServers, GroupId = group, EnableAutoCommit = false };
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(admin).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
        var committed = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, new Partition(p))), TimeSpan.FromSeconds(10));
        return committed.ToDictionary(c => c.Partition.Value, c => c.Offset == Offset.Unset ? (long?)null : c.Offset.Value);
    }

    /// <summary>The end offset (high watermark) of every partition of <paramref name="topic"/>.</summary>
    public IReadOnlyDictionary<int, long> EndOffsets(string topic, int partitions) =>
        Enumerable.Range(0, partitions).ToDictionary(p => p, p => offsetQueries.QueryWatermarkOffsets(new TopicPartition(topic, new Partition(p)), TimeSpan.FromSeconds(10)).High.Value);

    public ValueTask DisposeAsync()
    {
        try
        {
            producer.Flush(TimeSpan.FromSeconds(10)); // a test that failed may leave records unsent: nothing to assert here
        }
        finally
        {
            producer.Dispose();
            offsetQueries.Dispose();
            Cluster.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
