using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// Committed offsets of a consumer group and the end offsets of a topic, read with a plain Confluent client that
/// never joins the group (kcat cannot fetch a group's committed offsets).
/// </summary>
public static class KafkaOffsets
{
    public static Task<IReadOnlyDictionary<int, long>> CommittedAsync(string bootstrap, string group, string topic, int partitions) => Task.Run(() =>
    {
        KafkaNative.EnsureLoaded();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = group, EnableAutoCommit = false }).Build();
        var committed = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(20));
        return (IReadOnlyDictionary<int, long>)committed.ToDictionary(c => c.Partition.Value, c => c.Offset.IsSpecial ? 0L : c.Offset.Value);
    });

    public static Task<IReadOnlyDictionary<int, long>> EndAsync(string bootstrap, string topic, int partitions) => Task.Run(() =>
    {
        KafkaNative.EnsureLoaded();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "offsets-reader-" + Guid.NewGuid().ToString("N") }).Build();
        return (IReadOnlyDictionary<int, long>)Enumerable.Range(0, partitions)
            .ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(20)).High.Value);
    });

    public static string Format(IReadOnlyDictionary<int, long> offsets) => string.Join(", ", offsets.OrderBy(o => o.Key).Select(o => $"{o.Key}:{o.Value}"));
}
