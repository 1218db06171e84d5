namespace PrefOnline.Streaming.Transport;

/// <summary>
/// Answers, when a source is assigned a partition, where reading must resume. Sources call it on their
/// consume thread during a rebalance, so it must be quick and must not block on I/O.
/// </summary>
public interface IResumeOffsetProvider
{
    /// <summary>
    /// The offset of the next record the caller's state has NOT absorbed (normally the latest durable
    /// checkpoint's offset, or a newer in-memory position if the state in memory already absorbed more),
    /// or null to fall back to the consumer group's committed offset, then to the source's reset policy.
    /// </summary>
    long? GetResumeOffset(TopicPartitionId partition);
}
