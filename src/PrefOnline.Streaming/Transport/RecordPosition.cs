namespace PrefOnline.Streaming.Transport;

/// <summary>Where a record sits: its partition and its own offset.</summary>
public readonly record struct RecordPosition(TopicPartitionId Partition, long Offset)
{
    public override string ToString() => $"{Partition}@{Offset}";
}
