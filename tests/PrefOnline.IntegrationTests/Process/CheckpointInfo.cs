namespace PrefOnline.IntegrationTests.Process;

/// <summary>What a test reads from one checkpoint's manifest.json (layout: src/PrefOnline.Worker/Checkpoints/README.md).</summary>
public sealed record CheckpointInfo(
    long Version,
    long? Parent,
    DateTimeOffset Created,
    IReadOnlyDictionary<string, IReadOnlyDictionary<int, long>> Offsets,
    IReadOnlyDictionary<string, double> Metrics,
    string Directory)
{
    /// <summary>Next offset to read of a topic's partition (0 when the checkpoint has not read it).</summary>
    public long NextOffset(string topic, int partition) =>
        Offsets.TryGetValue(topic, out var partitions) && partitions.TryGetValue(partition, out var offset) ? offset : 0;

    public double? Metric(string name) => Metrics.TryGetValue(name, out var value) ? value : null;
}
