namespace PrefOnline.Streaming.Transport;

/// <summary>
/// Where to resume reading a partition: the offset of the NEXT record not yet absorbed (Kafka's
/// commit convention, i.e. last absorbed offset + 1). This is what checkpoints store, what sources seek
/// to on assignment and what <see cref="IRecordSource.CommitAsync"/> commits. A record's own offset is
/// never a resume offset; use <see cref="ConsumedRecord.Next"/> to turn one into the other.
/// </summary>
public readonly record struct ResumeOffset(TopicPartitionId Partition, long NextOffset)
{
    public ResumeOffset(string topic, int partition, long nextOffset) : this(new TopicPartitionId(topic, partition), nextOffset)
    {
    }

    public override string ToString() => $"{Partition}@{NextOffset}";
}
