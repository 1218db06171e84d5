using System.Security.Cryptography;
using PrefOnline.Learning.Randomness;

namespace PrefOnline.Learning.Replay;

/// <summary>
/// A bounded store of training items between the generator/scorer and the learner.
/// <list type="bullet">
/// <item>Never holds more than <see cref="ReplayLimits.Capacity"/> items: when full, FIFO evicts
/// the oldest, a reservoir keeps a uniform sample of everything offered.</item>
/// <item>"Fresh" means never drawn yet; "replayed" means drawn before with reuse left. Each
/// <see cref="Draw"/> aims at round(FreshFraction · batch) fresh items (newest first: the most
/// on-policy), the rest replayed ones drawn uniformly; a short kind is made up by the other.</item>
/// <item>An item leaves after <see cref="ReplayLimits.MaxReuse"/> draws (exhausted) or once the
/// current policy is more than <see cref="ReplayLimits.MaxStaleness"/> updates newer (expired,
/// checked on every draw and by <see cref="ExpireStale"/>).</item>
/// <item><see cref="WriteSnapshot"/> / <see cref="ReadSnapshot"/> round-trip the buffer exactly, its
/// generator state included, so a restored learner draws the very batches the original would have;
/// writing a restored buffer gives the same bytes. A SHA-256 trailer detects a damaged snapshot.</item>
/// </list>
/// Thread-safe: the producer adds while the learner draws.
/// </summary>
public sealed class ReplayBuffer<T>
{
    private static ReadOnlySpan<byte> Magic => "PORB"u8;
    private const int FormatVersion = 1;

    private readonly object gate = new();
    private readonly List<Slot> slots;
    private readonly Xoshiro256StarStar random;
    private long offered;        // items ever offered (Algorithm R's n)
    private long nextSequence;
    private long added, evicted, rejected, expired, exhausted, drawnFresh, drawnReplayed;

    public ReplayBuffer(ReplayLimits options)
        : this(options, new Xoshiro256StarStar(options?.Seed ?? throw new ArgumentNullException(nameof(options))))
    {
    }

    private ReplayBuffer(ReplayLimits options, Xoshiro256StarStar random)
    {
        options.Validate();
        Options = options;
        this.random = random;
        slots = new List<Slot>(Math.Min(options.Capacity, 1 << 16));
    }

    public ReplayLimits Options { get; }

    public int Count
    {
        get
        {
            lock (gate) return slots.Count;
        }
    }

    /// <summary>Items never drawn yet.</summary>
    public int FreshCount
    {
        get
        {
            lock (gate) return slots.Count(s => s.Uses == 0);
        }
    }

    public ReplayCounters Counters
    {
        get
        {
            lock (gate) return new ReplayCounters(added, evicted, rejected, expired, exhausted, drawnFresh, drawnReplayed);
        }
    }

    /// <summary>Offers an item produced by <paramref name="updateCount"/>. Returns false only when a
    /// full reservoir declined it.</summary>
    public bool Add(T item, long updateCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(updateCount);
        lock (gate)
        {
            offered++;
            var slot = new Slot(item, updateCount, 0, nextSequence);
            if (slots.Count < Options.Capacity)
            {
                slots.Add(slot);
            }
            else if (Options.Eviction == EvictionPolicy.Fifo)
            {
                // Slots stay in arrival order under FIFO (removals keep order), so the oldest is first.
                slots.RemoveAt(0);
                slots.Add(slot);
                evicted++;
            }
            else
            {
                var j = random.NextBelow((ulong)offered);
                if (j >= (ulong)Options.Capacity)
                {
                    rejected++;
                    return false;
                }
                slots[(int)j] = slot;
                evicted++;
            }
            nextSequence++;
            added++;
            return true;
        }
    }

    /// <summary>Removes every item older than the staleness limit allows; returns how many.</summary>
    public int ExpireStale(long currentUpdateCount)
    {
        lock (gate) return ExpireLocked(currentUpdateCount);
    }

    /// <summary>
    /// Draws up to <paramref name="batchSize"/> items for one learner update at
    /// <paramref name="currentUpdateCount"/> (fewer only when the buffer holds fewer after expiry).
    /// Each drawn item's use count goes up; items at their reuse limit leave the buffer.
    /// </summary>
    public ReplayBatch<T> Draw(int batchSize, long currentUpdateCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(currentUpdateCount);
        lock (gate)
        {
            ExpireLocked(currentUpdateCount);

            var fresh = new List<int>();
            var replayed = new List<int>();
            for (var i = 0; i < slots.Count; i++) (slots[i].Uses == 0 ? fresh : replayed).Add(i);
            fresh.Sort((a, b) => slots[b].Sequence.CompareTo(slots[a].Sequence));          // newest first

            var (takeFresh, takeReplayed) = Split(batchSize, fresh.Count, replayed.Count, Options.FreshFraction);

            // Partial Fisher–Yates: the first takeReplayed positions become a uniform sample without replacement.
            for (var k = 0; k < takeReplayed; k++)
            {
                var j = k + (int)random.NextBelow((ulong)(replayed.Count - k));
                (replayed[k], replayed[j]) = (replayed[j], replayed[k]);
            }

            var picked = fresh.Take(takeFresh).Concat(replayed.Take(takeReplayed)).ToList();
            var entries = new List<ReplayEntry<T>>(picked.Count);
            var spent = new List<int>();
            foreach (var index in picked)
            {
                var s = slots[index];
                var updated = s with { Uses = s.Uses + 1 };
                slots[index] = updated;
                entries.Add(new ReplayEntry<T>(updated.Item, updated.UpdateCount, updated.Uses, updated.Sequence));
                if (updated.Uses >= Options.MaxReuse) spent.Add(index);
            }
            spent.Sort();
            for (var k = spent.Count - 1; k >= 0; k--) slots.RemoveAt(spent[k]);      // highest index first: order kept
            exhausted += spent.Count;
            drawnFresh += takeFresh;
            drawnReplayed += takeReplayed;
            return new ReplayBatch<T>(entries, takeFresh, takeReplayed);
        }
    }

    /// <summary>
    /// How many fresh and replayed items a batch takes: round(f·B) fresh (half away from zero) if
    /// available, the rest replayed, any shortfall of one kind made up by the other.
    /// </summary>
    public static (int Fresh, int Replayed) Split(int batchSize, int freshAvailable, int replayedAvailable, double freshFraction)
    {
        var wantFresh = (int)Math.Round(freshFraction * batchSize, MidpointRounding.AwayFromZero);
        var takeFresh = Math.Min(wantFresh, freshAvailable);
        var takeReplayed = Math.Min(batchSize - takeFresh, replayedAvailable);
        takeFresh = Math.Min(freshAvailable, batchSize - takeReplayed);
        return (takeFresh, takeReplayed);
    }

    /// <summary>The items in storage order with their bookkeeping (diagnostics and tests).</summary>
    public IReadOnlyList<ReplayEntry<T>> Snapshot()
    {
        lock (gate) return slots.Select(s => new ReplayEntry<T>(s.Item, s.UpdateCount, s.Uses, s.Sequence)).ToList();
    }

    // ---- checkpoints -------------------------------------------------------------------------------

    /// <summary>Writes the whole buffer (options, generator, counters, items in storage order) followed
    /// by a SHA-256 of everything before it.</summary>
    public void WriteSnapshot(Stream destination, IReplayItemSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(serializer);
        using var body = new MemoryStream();
        lock (gate)
        {
            using var w = new BinaryWriter(body, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(Options.Capacity);
            w.Write((byte)Options.Eviction);
            w.Write(Options.MaxReuse);
            w.Write(Options.MaxStaleness);
            w.Write(Options.FreshFraction);
            w.Write(Options.Seed);
            foreach (var word in random.GetState()) w.Write(word);
            foreach (var c in new[] { offered, nextSequence, added, evicted, rejected, expired, exhausted, drawnFresh, drawnReplayed }) w.Write(c);
            w.Write(slots.Count);
            using var item = new MemoryStream();
            using var itemWriter = new BinaryWriter(item, System.Text.Encoding.UTF8, leaveOpen: true);
            foreach (var s in slots)
            {
                w.Write(s.Sequence);
                w.Write(s.UpdateCount);
                w.Write(s.Uses);
                item.SetLength(0);
                serializer.Write(itemWriter, s.Item);
                itemWriter.Flush();
                w.Write(checked((int)item.Length));
                w.Write(item.GetBuffer(), 0, (int)item.Length);
            }
        }
        var bytes = body.GetBuffer().AsSpan(0, (int)body.Length);
        destination.Write(bytes);
        destination.Write(SHA256.HashData(bytes));
    }

    /// <summary>Rebuilds a buffer written by <see cref="WriteSnapshot"/>; throws
    /// <see cref="InvalidDataException"/> when the snapshot is damaged, truncated or inconsistent.</summary>
    public static ReplayBuffer<T> ReadSnapshot(Stream source, IReplayItemSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(serializer);
        using var all = new MemoryStream();
        source.CopyTo(all);
        var data = all.GetBuffer().AsSpan(0, (int)all.Length);
        if (data.Length < Magic.Length + 4 + SHA256.HashSizeInBytes || !data[..Magic.Length].SequenceEqual(Magic))
            throw new InvalidDataException("not a replay-buffer snapshot (bad magic or too short)");
        var body = data[..^SHA256.HashSizeInBytes];
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(data[^SHA256.HashSizeInBytes..]))
            throw new InvalidDataException("replay-buffer snapshot checksum mismatch: the file is damaged or truncated");

        using var bodyStream = new MemoryStream(body.ToArray(), writable: false);
        using var r = new BinaryReader(bodyStream);
        try
        {
            r.ReadBytes(Magic.Length);
            var version = r.ReadInt32();
            if (version != FormatVersion) throw new InvalidDataException($"replay-buffer snapshot format {version} is not supported (expected {FormatVersion})");
            var options = new ReplayLimits
            {
                Capacity = r.ReadInt32(),
                Eviction = (EvictionPolicy)r.ReadByte(),
                MaxReuse = r.ReadInt32(),
                MaxStaleness = r.ReadInt64(),
                FreshFraction = r.ReadDouble(),
                Seed = r.ReadUInt64(),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"replay-buffer snapshot holds invalid options: {e.Message}", e);
            }
            Span<ulong> state = stackalloc ulong[4];
            for (var i = 0; i < 4; i++) state[i] = r.ReadUInt64();
            Xoshiro256StarStar random;
            try
            {
                random = Xoshiro256StarStar.FromState(state);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"replay-buffer snapshot holds an invalid generator state: {e.Message}", e);
            }
            var buffer = new ReplayBuffer<T>(options, random)
            {
                offered = r.ReadInt64(),
                nextSequence = r.ReadInt64(),
                added = r.ReadInt64(),
                evicted = r.ReadInt64(),
                rejected = r.ReadInt64(),
                expired = r.ReadInt64(),
                exhausted = r.ReadInt64(),
                drawnFresh = r.ReadInt64(),
                drawnReplayed = r.ReadInt64(),
            };
            var count = r.ReadInt32();
            if (count < 0 || count > options.Capacity) throw new InvalidDataException($"replay-buffer snapshot holds {count} items for capacity {options.Capacity}");
            for (var i = 0; i < count; i++)
            {
                var sequence = r.ReadInt64();
                var updateCount = r.ReadInt64();
                var uses = r.ReadInt32();
                if (sequence < 0 || sequence >= buffer.nextSequence || updateCount < 0 || uses < 0 || uses >= options.MaxReuse)
                    throw new InvalidDataException($"replay-buffer snapshot item {i} has inconsistent bookkeeping (sequence {sequence}, update count {updateCount}, uses {uses})");
                var length = r.ReadInt32();
                if (length < 0 || length > bodyStream.Length - bodyStream.Position) throw new InvalidDataException($"replay-buffer snapshot item {i} has length {length} beyond the data");
                var start = bodyStream.Position;
                var item = serializer.Read(r);
                if (bodyStream.Position - start != length) throw new InvalidDataException($"replay-buffer snapshot item {i}: the serializer read {bodyStream.Position - start} bytes of {length}");
                buffer.slots.Add(new Slot(item, updateCount, uses, sequence));
            }
            if (bodyStream.Position != bodyStream.Length) throw new InvalidDataException("replay-buffer snapshot has trailing bytes");
            return buffer;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("replay-buffer snapshot ends early", e);
        }
    }

    // ---- internals ---------------------------------------------------------------------------------

    private int ExpireLocked(long currentUpdateCount)
    {
        var removed = slots.RemoveAll(s => currentUpdateCount - s.UpdateCount > Options.MaxStaleness);
        expired += removed;
        return removed;
    }

    private readonly record struct Slot(T Item, long UpdateCount, int Uses, long Sequence);
}
