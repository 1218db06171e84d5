namespace PrefOnline.Streaming.Transport;

/// <summary>One partition of one topic.</summary>
public readonly record struct TopicPartitionId(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}[{Partition}]";
}
