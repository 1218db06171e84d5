namespace PrefOnline.Streaming.Transport;

/// <summary>
/// One record as read from a source, bytes untouched. <see cref="Value"/> and <see cref="Key"/> are
/// owned by the record and must be treated as immutable (the embedded transport shares them between
/// consumers; the dead-letter router forwards them byte for byte).
/// <para>A record larger than its source's limit is not read into memory (<see cref="ContentOmitted"/>): the Kafka
/// source hands over its position and <see cref="Size"/> with an empty value, no headers and the key only when it is
/// at most 1 KiB, so a flood of oversized records costs a few hundred bytes each, not their size. The validator refuses
/// it as <c>record-too-large</c> and the dead-letter router writes a pointer to its position.</para>
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

    /// <summary>
    /// Bytes of the record as the broker held it: value + key + header names (UTF-8) and values — what
    /// <c>Validation:MaxRecordBytes</c> limits. Given by the source when <see cref="ContentOmitted"/>.
    /// </summary>
    public long Size { get; init; } = SizeOf(key, value, headers ?? NoHeaders);

    /// <summary>True when the source did not keep the value and headers (and a key over 1 KiB) because the record exceeds its size limit.</summary>
    public bool ContentOmitted { get; init; }

    public string Topic => Partition.Topic;

    public RecordPosition Position => new(Partition, Offset);

    /// <summary>The resume offset that marks this record as absorbed (Offset + 1).</summary>
    public ResumeOffset Next => new(Partition, Offset + 1);

    public override string ToString() => $"{Partition}@{Offset}";

    /// <summary>Value + key + header names (UTF-8) and values, in bytes.</summary>
    public static long SizeOf(byte[]? key, byte[] value, IReadOnlyList<RecordHeader> headers)
    {
        long size = (key?.Length ?? 0) + (value?.Length ?? 0);
        foreach (var header in headers) size += System.Text.Encoding.UTF8.GetByteCount(header.Name) + header.Value.Length;
        return size;
    }
}
