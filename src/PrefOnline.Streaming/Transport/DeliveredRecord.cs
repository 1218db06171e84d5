namespace PrefOnline.Streaming.Transport;

/// <summary>Where a produced record was durably written (acknowledged by all in-sync replicas on Kafka).</summary>
public readonly record struct DeliveredRecord(TopicPartitionId Partition, long Offset)
{
    public override string ToString() => $"{Partition}@{Offset}";
}
