using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Validation;

/// <summary>
/// Remembers recently seen record ids, bounded in count (oldest forgotten first) and in age, to refuse
/// duplicates. A second sighting of an id at the SAME position (a redelivery of the same record after a
/// re-assignment or seek back) is not a duplicate; the same id at another position is. Thread-safe.
/// </summary>
/// <remarks>
/// The window lives in memory: after a restart it starts empty, which is correct for the worker because
/// records re-read from a checkpoint's offsets were not absorbed yet. Memory: about 100 bytes plus the id
/// per entry (100,000 ids of 32 characters: ~16 MB).
/// </remarks>
public sealed class DuplicateIdWindow
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, RecordPosition?> seen = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Timestamp)> order = new();
    private readonly TimeProvider time;
    private readonly long ttlTicks;

    public DuplicateIdWindow(int capacity, TimeSpan ttl, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        Capacity = capacity;
        Ttl = ttl;
        time = timeProvider ?? TimeProvider.System;
        ttlTicks = (long)(ttl.TotalSeconds * time.TimestampFrequency);
    }

    public int Capacity { get; }

    public TimeSpan Ttl { get; }

    /// <summary>Ids currently remembered.</summary>
    public int Count
    {
        get
        {
            lock (gate) return seen.Count;
        }
    }

    /// <summary>
    /// Registers <paramref name="id"/> seen at <paramref name="position"/> (null: position unknown, so any
    /// repeat is a duplicate). Returns false when it is a duplicate; <paramref name="firstSeenAt"/> then
    /// tells where it was first seen (null if that position was unknown).
    /// </summary>
    public bool TryRegister(string id, RecordPosition? position, out RecordPosition? firstSeenAt)
    {
        ArgumentNullException.ThrowIfNull(id);
        lock (gate)
        {
            var now = time.GetTimestamp();
            Evict(now);
            if (seen.TryGetValue(id, out var earlier))
            {
                firstSeenAt = earlier;
                return position is not null && earlier == position;
            }
            while (seen.Count >= Capacity) seen.Remove(order.Dequeue().Id);
            seen.Add(id, position);
            order.Enqueue((id, now));
            firstSeenAt = null;
            return true;
        }
    }

    private void Evict(long now)
    {
        while (order.Count > 0 && now - order.Peek().Timestamp >= ttlTicks)
        {
            seen.Remove(order.Dequeue().Id);
        }
    }
}
