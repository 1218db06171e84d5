using PrefOnline.Learning.TrainingData;

namespace PrefOnline.Learning.Online;

/// <summary>
/// Rollouts waiting for human labels, grouped by prompt and policy version, indexed by rollout id for
/// the join. Bounded by the caller (generation waits while <see cref="RolloutCount"/> is at the limit).
/// Part of every checkpoint (<see cref="Write"/>/<see cref="Read"/>), so a prompt counts as absorbed as
/// soon as its rollouts are here. Not thread-safe: owned by the <see cref="OnlineLearner"/>, a single writer.
/// </summary>
public sealed class PendingJoins
{
    private const int FormatVersion = 1;
    private readonly Dictionary<string, PendingGroup> groups = new(StringComparer.Ordinal);
    private readonly LinkedList<PendingGroup> order = new();
    private readonly Dictionary<string, (PendingGroup Group, int Index)> byRollout = new(StringComparer.Ordinal);

    public int GroupCount => groups.Count;

    public int RolloutCount => byRollout.Count;

    /// <summary>Adds a rollout to the group of its prompt and version, opening the group (with <paramref name="deadline"/>) if needed.</summary>
    public void Add(Rollout rollout, string groupKey, long deadline)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        if (byRollout.ContainsKey(rollout.Id)) return; // a redelivered rollout: already waiting
        if (!groups.TryGetValue(groupKey, out var group))
        {
            group = new PendingGroup(groupKey, deadline);
            groups[groupKey] = group;
            order.AddLast(group);
        }
        group.Rollouts.Add(new PendingRollout(rollout));
        byRollout[rollout.Id] = (group, group.Rollouts.Count - 1);
    }

    public bool Contains(string rolloutId) => byRollout.ContainsKey(rolloutId);

    /// <summary>The waiting rollout with this id, if any.</summary>
    public Rollout? Find(string rolloutId) => byRollout.TryGetValue(rolloutId, out var at) ? at.Group.Rollouts[at.Index].Rollout : null;

    /// <summary>
    /// Joins a rating to the rollout it names, if that rollout is waiting and the rating is about the
    /// same text (labels are self-contained; a rating whose text differs is about something else).
    /// </summary>
    public bool TryJoinRating(string rolloutId, string prompt, string completion, double reward)
    {
        if (!byRollout.TryGetValue(rolloutId, out var at)) return false;
        var pending = at.Group.Rollouts[at.Index];
        if (pending.Rollout.Completion != completion || pending.Rollout.Prompt != prompt) return false;
        pending.HumanReward = reward;
        return true;
    }

    /// <summary>Joins a preference to the two waiting rollouts it names (same group, same texts).</summary>
    public bool TryJoinPreference(string chosenId, string rejectedId, string prompt, string chosen, string rejected)
    {
        if (!byRollout.TryGetValue(chosenId, out var c) || !byRollout.TryGetValue(rejectedId, out var r)) return false;
        if (!ReferenceEquals(c.Group, r.Group) || c.Index == r.Index) return false;
        var chosenRollout = c.Group.Rollouts[c.Index].Rollout;
        var rejectedRollout = r.Group.Rollouts[r.Index].Rollout;
        if (chosenRollout.Prompt != prompt || chosenRollout.Completion != chosen || rejectedRollout.Completion != rejected) return false;
        c.Group.HumanOrder.Add((c.Index, r.Index));
        return true;
    }

    /// <summary>Removes and returns the groups whose deadline is at or before <paramref name="now"/>, or that are fully rated, oldest first.</summary>
    public IReadOnlyList<PendingGroup> TakeDue(long now)
    {
        var due = new List<PendingGroup>();
        for (var node = order.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.Deadline <= now || node.Value.FullyRated)
            {
                due.Add(node.Value);
                Remove(node);
            }
            node = next;
        }
        return due;
    }

    /// <summary>Removes and returns every group (scoring everything now, e.g. with a zero wait).</summary>
    public IReadOnlyList<PendingGroup> TakeAll() => TakeDue(long.MaxValue);

    private void Remove(LinkedListNode<PendingGroup> node)
    {
        order.Remove(node);
        groups.Remove(node.Value.Key);
        foreach (var rollout in node.Value.Rollouts) byRollout.Remove(rollout.Rollout.Id);
    }

    /// <summary>Writes every waiting group (rollouts, joined ratings and orders; deadlines are not kept).</summary>
    public void Write(BinaryWriter writer)
    {
        writer.Write(FormatVersion);
        writer.Write(groups.Count);
        foreach (var group in order)
        {
            writer.Write(group.Key);
            writer.Write(group.Rollouts.Count);
            foreach (var pending in group.Rollouts)
            {
                RolloutSerializer.Instance.Write(writer, pending.Rollout);
                writer.Write(pending.HumanReward.HasValue);
                writer.Write(pending.HumanReward ?? 0);
            }
            writer.Write(group.HumanOrder.Count);
            foreach (var (chosen, rejected) in group.HumanOrder)
            {
                writer.Write(chosen);
                writer.Write(rejected);
            }
        }
    }

    /// <summary>Reads what <see cref="Write"/> wrote; every group gets <paramref name="deadline"/> (a restart waits the full window again).</summary>
    public static PendingJoins Read(BinaryReader reader, long deadline)
    {
        var version = reader.ReadInt32();
        if (version != FormatVersion) throw new InvalidDataException($"pending-joins format {version} is not supported (expected {FormatVersion})");
        var joins = new PendingJoins();
        var groupCount = reader.ReadInt32();
        if (groupCount < 0) throw new InvalidDataException("pending-joins group count is negative");
        for (var g = 0; g < groupCount; g++)
        {
            var key = reader.ReadString();
            var count = reader.ReadInt32();
            if (count < 0) throw new InvalidDataException("pending-joins rollout count is negative");
            for (var i = 0; i < count; i++)
            {
                var rollout = RolloutSerializer.Instance.Read(reader);
                var rated = reader.ReadBoolean();
                var reward = reader.ReadDouble();
                joins.Add(rollout, key, deadline);
                if (rated) joins.groups[key].Rollouts[^1].HumanReward = reward;
            }
            var orders = reader.ReadInt32();
            if (orders < 0) throw new InvalidDataException("pending-joins order count is negative");
            for (var k = 0; k < orders; k++)
            {
                var chosen = reader.ReadInt32();
                var rejected = reader.ReadInt32();
                if (count == 0 || chosen < 0 || rejected < 0 || chosen >= count || rejected >= count)
                    throw new InvalidDataException($"pending-joins order ({chosen}, {rejected}) is outside its group of {count}");
                joins.groups[key].HumanOrder.Add((chosen, rejected));
            }
        }
        return joins;
    }
}

/// <summary>
/// The rollouts of one prompt generated by one policy version, waiting together until
/// <see cref="Deadline"/> (a <see cref="TimeProvider"/> timestamp) for labels. Human preferences that name
/// two of its rollouts are kept as (chosen, rejected) index pairs.
/// </summary>
public sealed class PendingGroup(string key, long deadline)
{
    public string Key { get; } = key;

    /// <summary>TimeProvider timestamp after which the group is scored without waiting further.</summary>
    public long Deadline { get; set; } = deadline;

    public List<PendingRollout> Rollouts { get; } = [];

    /// <summary>Orders fixed by human preference pairs: rollout indices within <see cref="Rollouts"/>.</summary>
    public List<(int Chosen, int Rejected)> HumanOrder { get; } = [];

    /// <summary>True when every rollout has a human rating (nothing left to wait for).</summary>
    public bool FullyRated => Rollouts.Count > 0 && Rollouts.All(r => r.HumanReward is not null);
}


/// <summary>
/// A generated rollout waiting for human labels. <see cref="Rollout"/> carries a placeholder reward until
/// the group is scored; <see cref="HumanReward"/> is set when a rating naming this rollout arrives (its
/// value already mapped onto the reward model's logit scale).
/// </summary>
public sealed class PendingRollout(Rollout rollout)
{
    public Rollout Rollout { get; } = rollout;

    public double? HumanReward { get; set; }
}
