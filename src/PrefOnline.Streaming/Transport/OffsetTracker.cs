namespace PrefOnline.Streaming.Transport;

/// <summary>
/// Tracks which records the caller's state has absorbed, per partition, and answers the resume offset
/// to put in a checkpoint, to commit after it is durable, and to seek to on (re)assignment.
/// </summary>
/// <remarks>
/// Records may be absorbed out of order (e.g. prompts generated in parallel): the resume offset is the
/// lowest offset begun but not completed, so a crash never skips an unabsorbed record. A record at or
/// below a partition's highest begun offset is a replay (the source re-read after a re-assignment):
/// <see cref="Begin"/> returns false and the caller must skip it, which makes absorption exactly-once.
/// Thread-safe.
/// <code>
/// var tracker = new OffsetTracker(checkpoint.Offsets);          // restore
/// var source = KafkaRecordSource.Start(options, tracker, ...);  // seeks to the checkpoint on assignment
/// await foreach (var record in source.Records.ReadAllAsync(ct))
/// {
///     if (!tracker.Begin(record)) continue;                     // replay: already absorbed
///     Absorb(record);
///     tracker.Complete(record);
/// }
/// // checkpoint: save tracker.Snapshot() with the state; once durable: await source.CommitAsync(snapshot, ct)
/// </code>
/// </remarks>
public sealed class OffsetTracker : IResumeOffsetProvider
{
    private readonly Lock gate = new();
    private readonly Dictionary<TopicPartitionId, PartitionProgress> partitions = new();

    public OffsetTracker()
    {
    }

    /// <summary>Starts from resume offsets restored from a checkpoint.</summary>
    public OffsetTracker(IEnumerable<ResumeOffset> restored)
    {
        ArgumentNullException.ThrowIfNull(restored);
        foreach (var offset in restored)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(offset.NextOffset);
            partitions[offset.Partition] = new PartitionProgress(offset.NextOffset);
        }
    }

    /// <summary>
    /// Registers a delivered record as being absorbed. Returns false when the record was already begun or
    /// absorbed (a replay after a re-assignment): skip it and do not call <see cref="Complete"/>.
    /// </summary>
    public bool Begin(ConsumedRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (gate)
        {
            if (!partitions.TryGetValue(record.Partition, out var progress))
            {
                // First record ever seen for this partition: everything before it counts as not ours.
                progress = new PartitionProgress(record.Offset);
                partitions[record.Partition] = progress;
            }
            return progress.Begin(record.Offset);
        }
    }

    /// <summary>Marks a begun record absorbed into the caller's state.</summary>
    /// <exception cref="InvalidOperationException">The record was not begun (or was completed already).</exception>
    public void Complete(ConsumedRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (gate)
        {
            if (!partitions.TryGetValue(record.Partition, out var progress) || !progress.Complete(record.Offset))
            {
                throw new InvalidOperationException($"record {record} completed without a matching Begin");
            }
        }
    }

    /// <summary><see cref="Begin"/> then <see cref="Complete"/>, for callers that absorb records one at a time in order. False: a replay, skip it.</summary>
    public bool MarkAbsorbed(ConsumedRecord record)
    {
        if (!Begin(record)) return false;
        Complete(record);
        return true;
    }

    /// <summary>True when the record is already absorbed or in flight (its replay must be skipped).</summary>
    public bool IsSeen(ConsumedRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (gate)
        {
            return partitions.TryGetValue(record.Partition, out var progress) && record.Offset <= progress.HighestBegun;
        }
    }

    /// <summary>Resume offsets of every partition seen so far (what a checkpoint stores), ordered by topic then partition.</summary>
    public IReadOnlyList<ResumeOffset> Snapshot()
    {
        lock (gate)
        {
            return partitions
                .Select(p => new ResumeOffset(p.Key, p.Value.ResumeOffset))
                .OrderBy(o => o.Partition.Topic, StringComparer.Ordinal)
                .ThenBy(o => o.Partition.Partition)
                .ToArray();
        }
    }

    /// <summary>Resume offset of one partition, or null when nothing is known about it.</summary>
    public long? GetResumeOffset(TopicPartitionId partition)
    {
        lock (gate)
        {
            return partitions.TryGetValue(partition, out var progress) ? progress.ResumeOffset : null;
        }
    }

    /// <summary>Number of records begun but not completed, over all partitions.</summary>
    public int InFlight
    {
        get
        {
            lock (gate) return partitions.Values.Sum(p => p.InFlightCount);
        }
    }

    private sealed class PartitionProgress(long resumeOffset)
    {
        // Offsets begun, in increasing order (records begin in offset order); the head is always pending.
        private readonly Queue<long> begun = new();
        private readonly HashSet<long> pending = new();
        private long floor = resumeOffset; // every offset below is absorbed

        public long HighestBegun { get; private set; } = resumeOffset - 1;

        public int InFlightCount => pending.Count;

        public long ResumeOffset => begun.Count > 0 ? begun.Peek() : floor;

        public bool Begin(long offset)
        {
            if (offset <= HighestBegun) return false;
            HighestBegun = offset;
            begun.Enqueue(offset);
            pending.Add(offset);
            return true;
        }

        public bool Complete(long offset)
        {
            if (!pending.Remove(offset)) return false;
            while (begun.Count > 0 && !pending.Contains(begun.Peek()))
            {
                floor = begun.Dequeue() + 1;
            }
            return true;
        }
    }
}
