namespace PrefOnline.Streaming.Transport;

/// <summary>
/// Progress of one assigned partition. <see cref="Lag"/> counts records on the broker that the source
/// has not yet handed to the caller: high watermark − next offset to deliver (records already in the
/// source's channel count as delivered). Null fields are unknown (e.g. no fetch response yet).
/// </summary>
public readonly record struct PartitionLag(TopicPartitionId Partition, long? HighWatermark, long? NextOffsetToDeliver, long? Committed)
{
    public long? Lag => HighWatermark is { } high && NextOffsetToDeliver is { } next ? Math.Max(0, high - next) : null;
}
