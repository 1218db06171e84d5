namespace PrefOnline.Streaming.Transport;

/// <summary>
/// A record to produce. Records with the same <see cref="Key"/> land in the same partition in order
/// (e.g. key rollouts by prompt id so all samples of a prompt stay together); a null key spreads records.
/// </summary>
public sealed record OutgoingRecord(string Topic, byte[]? Key, byte[] Value, IReadOnlyList<RecordHeader>? Headers = null)
{
    public string Topic { get; } = string.IsNullOrWhiteSpace(Topic) ? throw new ArgumentException("topic must be non-empty", nameof(Topic)) : Topic;

    public byte[] Value { get; } = Value ?? throw new ArgumentNullException(nameof(Value));
}
