namespace PrefOnline.Streaming.Embedded;

/// <summary>Configuration of the in-process broker.</summary>
public sealed class EmbeddedBrokerOptions
{
    /// <summary>
    /// Records each partition holds (default 10,000). A full partition first drops records that every
    /// active consumer group has already read (retention); if some group has not read them yet, producers
    /// wait (backpressure) instead of losing them. Topics no group reads simply drop their oldest records.
    /// </summary>
    public int PartitionCapacity { get; set; } = 10_000;

    /// <summary>Create an unknown topic on first produce/subscribe with <see cref="DefaultPartitions"/> (default false: unknown topics are an error, which catches typos).</summary>
    public bool AutoCreateTopics { get; set; }

    /// <summary>Partitions of an auto-created topic (default 1).</summary>
    public int DefaultPartitions { get; set; } = 1;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (PartitionCapacity < 1) problems.Add($"PartitionCapacity must be at least 1 (got {PartitionCapacity})");
        if (DefaultPartitions < 1) problems.Add($"DefaultPartitions must be at least 1 (got {DefaultPartitions})");
        return problems;
    }
}
