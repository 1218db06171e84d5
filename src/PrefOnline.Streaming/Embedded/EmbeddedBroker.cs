using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Embedded;

/// <summary>
/// An in-process stand-in for a Kafka cluster, so the whole pipeline runs with no broker and the same
/// delivery semantics: topics with partitions and offsets, keyed partitioning identical to Kafka's,
/// consumer groups that split partitions and commit offsets, resume offsets asked on every assignment,
/// bounded memory with backpressure. Nothing is persisted: a new broker starts empty.
/// </summary>
/// <remarks>
/// Differences from Kafka, by design: no network or outage (reachability is always Reachable); a full
/// partition makes producers wait when an active consumer group has not read its oldest records yet
/// (Kafka would delete them by retention), so the demo never loses a record for lack of space.
/// All state is guarded by one lock; operations are short and never block on I/O.
/// </remarks>
public sealed class EmbeddedBroker
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, TopicLog> topics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Group> groups = new(StringComparer.Ordinal);
    private readonly EmbeddedBrokerOptions options;
    private readonly TimeProvider time;
    private TaskCompletionSource changed = NewSignal();
    private long nextJoinOrder;

    public EmbeddedBroker(EmbeddedBrokerOptions? options = null, TimeProvider? timeProvider = null)
    {
        this.options = options ?? new EmbeddedBrokerOptions();
        var problems = this.options.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid embedded broker options: " + string.Join("; ", problems), nameof(options));
        time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates a topic (idempotent when the partition count matches).</summary>
    /// <param name="partitionCapacity">Records per partition; default <see cref="EmbeddedBrokerOptions.PartitionCapacity"/>.</param>
    public void CreateTopic(string topic, int partitions, int? partitionCapacity = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        var capacity = partitionCapacity ?? options.PartitionCapacity;
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        lock (gate)
        {
            if (topics.TryGetValue(topic, out var existing))
            {
                if (existing.Partitions.Length != partitions) throw new InvalidOperationException($"topic {topic} exists with {existing.Partitions.Length} partitions, not {partitions}");
                return;
            }
            topics[topic] = new TopicLog(topic, partitions, capacity);
            foreach (var group in groups.Values) Rebalance(group);
            Pulse();
        }
    }

    /// <summary>Existing topics and their partition counts.</summary>
    public IReadOnlyDictionary<string, int> Topics
    {
        get
        {
            lock (gate) return topics.ToDictionary(t => t.Key, t => t.Value.Partitions.Length, StringComparer.Ordinal);
        }
    }

    /// <summary>A sink producing into this broker.</summary>
    public EmbeddedRecordSink CreateSink() => new(this);

    /// <summary>Joins <see cref="EmbeddedSourceOptions.GroupId"/> and starts delivering (the source is returned running).</summary>
    public EmbeddedRecordSource Subscribe(EmbeddedSourceOptions sourceOptions, IResumeOffsetProvider resumeOffsets, StreamingMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(sourceOptions);
        ArgumentNullException.ThrowIfNull(resumeOffsets);
        var problems = sourceOptions.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid embedded source options: " + string.Join("; ", problems), nameof(sourceOptions));
        var source = new EmbeddedRecordSource(this, sourceOptions, resumeOffsets, metrics);
        lock (gate)
        {
            foreach (var topic in source.Topics) GetTopic(topic);
            if (!groups.TryGetValue(sourceOptions.GroupId, out var group)) groups[sourceOptions.GroupId] = group = new Group(sourceOptions.GroupId);
            source.JoinOrder = nextJoinOrder++;
            group.Members.Add(source);
            Rebalance(group);
            Pulse();
        }
        source.StartPump();
        return source;
    }

    /// <summary>Oldest retained offset and end offset (next offset to be written) of a partition.</summary>
    public (long LogStart, long End) GetWatermarks(TopicPartitionId partition)
    {
        lock (gate)
        {
            var log = GetPartition(partition);
            return (log.LogStart, log.End);
        }
    }

    /// <summary>The group's committed resume offsets (partitions never committed are absent).</summary>
    public IReadOnlyDictionary<TopicPartitionId, long> GetCommitted(string groupId)
    {
        lock (gate)
        {
            return groups.TryGetValue(groupId, out var group) ? new Dictionary<TopicPartitionId, long>(group.Committed) : new Dictionary<TopicPartitionId, long>();
        }
    }

    // ---- producing -----------------------------------------------------------------------------

    internal async Task<DeliveredRecord> AppendAsync(OutgoingRecord record, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task signal;
            lock (gate)
            {
                var topic = GetTopic(record.Topic);
                var partition = record.Key is { } key ? KeyPartitioner.PartitionFor(key, topic.Partitions.Length) : topic.NextRoundRobin();
                var log = topic.Partitions[partition];
                if (log.Count == log.Capacity) TruncateDelivered(topic.Name, partition, log);
                if (log.Count < log.Capacity)
                {
                    var id = new TopicPartitionId(topic.Name, partition);
                    var offset = log.End;
                    log.Append(new ConsumedRecord(id, offset, record.Key, record.Value, time.GetUtcNow(), record.Headers ?? []));
                    Pulse();
                    return new DeliveredRecord(id, offset);
                }
                signal = changed.Task;
            }
            // Full and some group has not read the oldest records: wait for it (backpressure).
            await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void TruncateDelivered(string topic, int partition, PartitionLog log)
    {
        var id = new TopicPartitionId(topic, partition);
        var keepFrom = log.End;
        foreach (var group in groups.Values)
        {
            foreach (var member in group.Members)
            {
                if (member.Positions.TryGetValue(id, out var position)) keepFrom = Math.Min(keepFrom, position);
            }
        }
        if (keepFrom > log.LogStart) log.DropBefore(Math.Min(keepFrom, log.LogStart + Math.Max(1, log.Capacity / 10)));
    }

    // ---- consuming (called by EmbeddedRecordSource) --------------------------------------------

    /// <summary>Hands the next available record of the member's assignment to <paramref name="deliver"/> (round-robin over partitions); returns the signal to await when there is none.</summary>
    internal Task? TryDeliverNext(EmbeddedRecordSource member, Func<ConsumedRecord, bool> deliver)
    {
        lock (gate)
        {
            if (member.Positions.Count > 0)
            {
                var assigned = member.Positions.Keys.ToArray();
                for (var i = 0; i < assigned.Length; i++)
                {
                    var id = assigned[(member.RoundRobin + i) % assigned.Length];
                    var log = topics[id.Topic].Partitions[id.Partition];
                    var position = member.Positions[id];
                    if (position < log.LogStart) position = log.LogStart; // dropped meanwhile (only possible for records nobody waited for)
                    if (position >= log.End) continue;
                    if (!deliver(log.Get(position))) return Task.CompletedTask; // channel full after all: wait for space again
                    member.Positions[id] = position + 1;
                    member.RoundRobin = (member.RoundRobin + i + 1) % assigned.Length;
                    Pulse(); // producers waiting for space may proceed
                    return null;
                }
            }
            return changed.Task;
        }
    }

    internal void Leave(EmbeddedRecordSource member)
    {
        lock (gate)
        {
            if (!groups.TryGetValue(member.GroupId, out var group) || !group.Members.Remove(member)) return;
            member.Positions.Clear();
            Rebalance(group);
            Pulse();
        }
    }

    internal void Commit(string groupId, IReadOnlyCollection<ResumeOffset> offsets)
    {
        lock (gate)
        {
            if (!groups.TryGetValue(groupId, out var group)) groups[groupId] = group = new Group(groupId);
            foreach (var offset in offsets)
            {
                GetPartition(offset.Partition);
                group.Committed[offset.Partition] = offset.NextOffset;
            }
        }
    }

    internal IReadOnlyList<PartitionLag> GetLag(EmbeddedRecordSource member)
    {
        lock (gate)
        {
            groups.TryGetValue(member.GroupId, out var group);
            return member.Positions
                .Select(p =>
                {
                    var log = topics[p.Key.Topic].Partitions[p.Key.Partition];
                    long? committed = group is not null && group.Committed.TryGetValue(p.Key, out var c) ? c : null;
                    return new PartitionLag(p.Key, log.End, Math.Max(p.Value, log.LogStart), committed);
                })
                .OrderBy(l => l.Partition.Topic, StringComparer.Ordinal).ThenBy(l => l.Partition.Partition)
                .ToArray();
        }
    }

    internal IReadOnlyCollection<TopicPartitionId> GetAssignment(EmbeddedRecordSource member)
    {
        lock (gate) return member.Positions.Keys.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition).ToArray();
    }

    // ---- group membership ----------------------------------------------------------------------

    /// <summary>Splits every subscribed topic's partitions over the members subscribing to it (by join order), then revokes and assigns.</summary>
    private void Rebalance(Group group)
    {
        var target = group.Members.ToDictionary(m => m, _ => new HashSet<TopicPartitionId>());
        foreach (var topicName in group.Members.SelectMany(m => m.Topics).Distinct(StringComparer.Ordinal))
        {
            if (!topics.TryGetValue(topicName, out var topic)) continue;
            var eligible = group.Members.Where(m => m.Topics.Contains(topicName)).OrderBy(m => m.JoinOrder).ToArray();
            for (var p = 0; p < topic.Partitions.Length; p++) target[eligible[p % eligible.Length]].Add(new TopicPartitionId(topicName, p));
        }
        foreach (var member in group.Members)
        {
            var wanted = target[member];
            foreach (var revoked in member.Positions.Keys.Where(p => !wanted.Contains(p)).ToArray()) member.Positions.Remove(revoked);
            foreach (var assigned in wanted.Where(p => !member.Positions.ContainsKey(p)))
            {
                member.Positions[assigned] = StartOffset(member, group, assigned);
            }
        }
    }

    private long StartOffset(EmbeddedRecordSource member, Group group, TopicPartitionId partition)
    {
        var log = topics[partition.Topic].Partitions[partition.Partition];
        long? start = member.AskResumeOffset(partition);
        if (start is null && group.Committed.TryGetValue(partition, out var committed)) start = committed;
        // Out of range or unknown: the reset policy, as Kafka's auto.offset.reset.
        if (start is not { } offset || offset < log.LogStart || offset > log.End)
        {
            return member.OffsetReset == OffsetResetPolicy.Earliest ? log.LogStart : log.End;
        }
        return offset;
    }

    private TopicLog GetTopic(string name)
    {
        if (topics.TryGetValue(name, out var topic)) return topic;
        if (!options.AutoCreateTopics)
        {
            throw new StreamingException($"unknown topic '{name}' (existing: {string.Join(", ", topics.Keys.Order(StringComparer.Ordinal))}); create it first or enable AutoCreateTopics", isTransient: false);
        }
        topic = new TopicLog(name, options.DefaultPartitions, options.PartitionCapacity);
        topics[name] = topic;
        foreach (var group in groups.Values) Rebalance(group);
        return topic;
    }

    private PartitionLog GetPartition(TopicPartitionId partition)
    {
        var topic = GetTopic(partition.Topic);
        if (partition.Partition < 0 || partition.Partition >= topic.Partitions.Length)
        {
            throw new StreamingException($"topic {partition.Topic} has no partition {partition.Partition}", isTransient: false);
        }
        return topic.Partitions[partition.Partition];
    }

    private void Pulse()
    {
        var previous = changed;
        changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class TopicLog(string name, int partitions, int capacity)
    {
        private int roundRobin;

        public string Name { get; } = name;

        public PartitionLog[] Partitions { get; } = Enumerable.Range(0, partitions).Select(_ => new PartitionLog(capacity)).ToArray();

        public int NextRoundRobin() => roundRobin++ % Partitions.Length;
    }

    /// <summary>A bounded append-only log: a ring of the records from LogStart to End-1.</summary>
    private sealed class PartitionLog(int capacity)
    {
        private readonly ConsumedRecord[] ring = new ConsumedRecord[capacity];
        private int head;

        public int Capacity => ring.Length;

        public int Count { get; private set; }

        public long LogStart { get; private set; }

        public long End => LogStart + Count;

        public void Append(ConsumedRecord record)
        {
            ring[(head + Count) % ring.Length] = record;
            Count++;
        }

        public ConsumedRecord Get(long offset) => ring[(int)((head + (offset - LogStart)) % ring.Length)];

        public void DropBefore(long offset)
        {
            while (LogStart < offset && Count > 0)
            {
                ring[head] = null!;
                head = (head + 1) % ring.Length;
                Count--;
                LogStart++;
            }
        }
    }

    private sealed class Group(string id)
    {
        public string Id { get; } = id;

        public List<EmbeddedRecordSource> Members { get; } = new();

        public Dictionary<TopicPartitionId, long> Committed { get; } = new();
    }
}
