using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Validation;

/// <summary>
/// Remembers recently seen record ids, bounded in count (oldest forgotten first) and in age, to refuse
/// duplicates. A second sighting of an id at the SAME position (a redelivery of the same record after a
/// re-assignment, a seek back or a restart) is not a duplicate; the same id at another position is. Thread-safe.
/// </summary>
/// <remarks>
/// The window lives in memory; a worker that must refuse duplicates across restarts saves it with its
/// checkpoint (<see cref="Snapshot"/>) and gives it back on load (<see cref="Restore"/>): without that, a
/// label refused as a duplicate before a crash would be accepted after the restart and applied twice.
/// Memory: about 120 bytes plus the id per entry (100,000 ids of 32 characters: ~18 MB).
/// </remarks>
public sealed class DuplicateIdWindow
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, RecordPosition?> seen = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Timestamp, DateTimeOffset SeenAt)> order = new();
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
            Add(id, position, now, time.GetUtcNow());
            firstSeenAt = null;
            return true;
        }
    }

    /// <summary>Every remembered id with where and when (UTC) it was first seen, oldest first.</summary>
    public IReadOnlyList<SeenId> Snapshot()
    {
        lock (gate)
        {
            Evict(time.GetTimestamp());
            return order.Select(o => new SeenId(o.Id, seen[o.Id], o.SeenAt)).ToList();
        }
    }

    /// <summary>
    /// Adds ids from a saved <see cref="Snapshot"/> (oldest first). Each keeps its age: an entry older than
    /// <see cref="Ttl"/> is dropped, and it expires when it would have without the restart. Ids already
    /// remembered keep their current entry; capacity applies as usual (the oldest are forgotten first).
    /// </summary>
    /// <returns>The entries taken over (and kept within capacity).</returns>
    public int Restore(IEnumerable<SeenId> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        lock (gate)
        {
            var nowStamp = time.GetTimestamp();
            var nowUtc = time.GetUtcNow();
            var combined = order.Select(o => (o.Id, Position: seen[o.Id], o.Timestamp, o.SeenAt)).ToList();
            var restored = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in entries)
            {
                var age = nowUtc - entry.SeenAt;
                if (age < TimeSpan.Zero) age = TimeSpan.Zero; // a clock step back: count it as seen now
                if (age >= Ttl || seen.ContainsKey(entry.Id)) continue;
                seen[entry.Id] = entry.Position; // also marks it taken, so a repeated entry counts once
                combined.Add((entry.Id, entry.Position, nowStamp - (long)(age.TotalSeconds * time.TimestampFrequency), entry.SeenAt));
                restored.Add(entry.Id);
            }
            // Oldest first again, and only the newest Capacity entries stay.
            seen.Clear();
            order.Clear();
            foreach (var (id, position, timestamp, seenAt) in combined.OrderBy(c => c.Timestamp).TakeLast(Capacity))
            {
                seen[id] = position;
                order.Enqueue((id, timestamp, seenAt));
            }
            Evict(nowStamp);
            return restored.Count(seen.ContainsKey);
        }
    }

    private void Add(string id, RecordPosition? position, long timestamp, DateTimeOffset seenAt)
    {
        while (seen.Count >= Capacity) seen.Remove(order.Dequeue().Id);
        seen.Add(id, position);
        order.Enqueue((id, timestamp, seenAt));
    }

    private void Evict(long now)
    {
        while (order.Count > 0 && now - order.Peek().Timestamp >= ttlTicks)
        {
            seen.Remove(order.Dequeue().Id);
        }
    }
}

/// <summary>An id the <see cref="DuplicateIdWindow"/> remembers: where (null: unknown) and when it was first seen.</summary>
public readonly record struct SeenId(string Id, RecordPosition? Position, DateTimeOffset SeenAt);
