namespace PrefOnline.Streaming.Transport;

/// <summary>
/// One record as read from a source, bytes untouched. <see cref="Value"/> and <see cref="Key"/> are
/// owned by the record and must be treated as immutable (the embedded transport shares them between
/// consumers; the dead-letter router forwards them byte for byte).
/// </summary>
public sealed class ConsumedRecord(TopicPartitionId partition, long offset, byte[]? key, byte[] value, DateTimeOffset timestamp, IReadOnlyList<RecordHeader> headers)
{
    private static readonly IReadOnlyList<RecordHeader> NoHeaders = [];

    public ConsumedRecord(TopicPartitionId partition, long offset, byte[]? key, byte[] value, DateTimeOffset timestamp)
        : this(partition, offset, key, value, timestamp, NoHeaders)
    {
    }

    public TopicPartitionId Partition { get; } = partition;

    /// <summary>This record's own offset within its partition.</summary>
    public long Offset { get; } = offset;

    public byte[]? Key { get; } = key;

    public byte[] Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    /// <summary>The record's timestamp (producer create time on Kafka; append time on the embedded transport).</summary>
    public DateTimeOffset Timestamp { get; } = timestamp;

    public IReadOnlyList<RecordHeader> Headers { get; } = headers ?? NoHeaders;

    public string Topic => Partition.Topic;

    public RecordPosition Position => new(Partition, Offset);

    /// <summary>The resume offset that marks this record as absorbed (Offset + 1).</summary>
    public ResumeOffset Next => new(Partition, Offset + 1);

    public override string ToString() => $"{Partition}@{Offset}";
}
