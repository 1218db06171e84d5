using System.Globalization;
using System.Text.Json.Nodes;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Which labels the guardrail may judge after a rollback (or a reload after a refused update). The learner
/// rebuilds its state from an older checkpoint and reads the labels again from that checkpoint's offsets, so
/// the restored reward model learns every label exactly once (a label is a fact about users, not about the
/// abandoned policy). But the re-read labels were already judged once, and they describe the abandoned line:
/// fed to the drift detectors again they would trip the guardrail a second time (issue 11: replayed
/// pre-reversal ratings did, and updates paused for the rest of the run). So a label is absorbed as usual
/// but not observed by the guardrail (human-rating drift, reward-model accuracy) nor the human reward gauge when
/// <list type="bullet">
/// <item>it is a replay: its position is below what the abandoned state had absorbed of its partition; or</item>
/// <item>it rates rollouts of an abandoned policy version (recognised by the <c>.v{version}.</c> part of the
///   rollout ids PrefOnline's generators write, <see cref="GeneratorStage.RolloutId"/>): a late label of the
///   abandoned line says nothing about the restored policy.</item>
/// </list>
/// The detectors thus re-baseline on post-rollback data only. Saved in worker.json with the state, so a
/// restart in the middle of the replay keeps filtering. Owned by the learning state's single writer.
/// </summary>
public sealed class LabelObservationFilter
{
    /// <summary>Abandoned version ranges kept (the oldest are dropped: their rollouts' labels stopped arriving long ago).</summary>
    public const int MaxAbandonedRanges = 64;

    private readonly Dictionary<TopicPartitionId, long> replayUntil = [];
    private readonly List<(long From, long To)> abandoned = [];

    /// <summary>Partition → the first offset that is not a replay.</summary>
    public IReadOnlyDictionary<TopicPartitionId, long> ReplayUntil => replayUntil;

    /// <summary>Published policy versions of abandoned lines, inclusive ranges, oldest first.</summary>
    public IReadOnlyList<(long From, long To)> AbandonedVersions => abandoned;

    /// <summary>
    /// A rollback or reload: records below <paramref name="absorbedBefore"/> (what the state being discarded had
    /// absorbed, as resume offsets) are replays from now on; rollouts of policy versions
    /// <paramref name="abandonedFrom"/>..<paramref name="abandonedTo"/> belong to an abandoned line (none when null).
    /// </summary>
    public void Extend(IEnumerable<ResumeOffset> absorbedBefore, long? abandonedFrom, long? abandonedTo)
    {
        foreach (var offset in absorbedBefore)
            replayUntil[offset.Partition] = Math.Max(replayUntil.GetValueOrDefault(offset.Partition), offset.NextOffset);
        if (abandonedFrom is { } from && abandonedTo is { } to && to >= from)
        {
            abandoned.Add((from, to));
            if (abandoned.Count > MaxAbandonedRanges) abandoned.RemoveAt(0);
        }
    }

    /// <summary>
    /// True while labels absorbed by the discarded state are still being read again. Meanwhile the reward model
    /// catches up with them, so its scores of on-policy samples move for that reason alone: the model-reward
    /// detector is not fed until the replay is over, and then re-learns its baseline on post-rollback data.
    /// </summary>
    public bool ReplayPending => replayUntil.Count > 0;

    /// <summary>Forgets the partitions whose replay is over (the tracker absorbed, or dead-lettered, every replayed record).</summary>
    public void Progress(OffsetTracker feedback)
    {
        foreach (var (partition, until) in replayUntil.ToList())
            if (feedback.GetResumeOffset(partition) is { } next && next >= until) replayUntil.Remove(partition);
    }

    /// <summary>True when the guardrail may judge this label (see the class summary for when it may not).</summary>
    public bool ShouldObserve(ValidatedRecord label)
    {
        if (replayUntil.TryGetValue(label.Source.Partition, out var until) && label.Source.Offset < until) return false;
        return label.Record switch
        {
            RatingRecord { RolloutId: { } rolloutId } => !IsAbandoned(rolloutId),
            PreferenceRecord { RolloutIds: { } ids } => !IsAbandoned(ids.Chosen) && !IsAbandoned(ids.Rejected),
            _ => true,
        };
    }

    /// <summary>True when a rollout id written by PrefOnline's generators names a version of an abandoned line.</summary>
    public bool IsAbandoned(string rolloutId)
    {
        if (abandoned.Count == 0 || !GeneratorStage.TryParseRolloutVersion(rolloutId, out var version)) return false;
        foreach (var (from, to) in abandoned)
            if (version >= from && version <= to) return true;
        return false;
    }

    /// <summary>The filter as saved in worker.json (<c>observation</c>).</summary>
    public JsonObject ToJson()
    {
        var replay = new JsonObject();
        foreach (var group in replayUntil.GroupBy(r => r.Key.Topic).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var partitions = new JsonObject();
            foreach (var (partition, offset) in group.OrderBy(p => p.Key.Partition)) partitions[partition.Partition.ToString(CultureInfo.InvariantCulture)] = offset;
            replay[group.Key] = partitions;
        }
        var ranges = new JsonArray();
        foreach (var (from, to) in abandoned) ranges.Add(new JsonArray(from, to));
        return new JsonObject { ["replay_until"] = replay, ["abandoned_versions"] = ranges };
    }

    /// <summary>Reads what <see cref="ToJson"/> wrote; null gives an empty filter (checkpoints of older builds).</summary>
    /// <exception cref="InvalidDataException">The object is malformed.</exception>
    public static LabelObservationFilter FromJson(JsonNode? node)
    {
        var filter = new LabelObservationFilter();
        if (node is null) return filter;
        if (node is not JsonObject root) throw Malformed("not an object");
        if (root["replay_until"] is { } replayNode)
        {
            if (replayNode is not JsonObject replay) throw Malformed("replay_until is not an object");
            foreach (var (topic, partitions) in replay)
            {
                if (partitions is not JsonObject parts) throw Malformed($"replay_until.{topic} is not an object");
                foreach (var (partition, offset) in parts)
                {
                    if (!int.TryParse(partition, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || !TryLong(offset, out var o) || o < 0)
                        throw Malformed($"replay_until.{topic}.{partition} is not a partition and an offset");
                    filter.replayUntil[new TopicPartitionId(topic, p)] = o;
                }
            }
        }
        if (root["abandoned_versions"] is { } rangesNode)
        {
            if (rangesNode is not JsonArray ranges) throw Malformed("abandoned_versions is not an array");
            foreach (var range in ranges)
            {
                if (range is not JsonArray { Count: 2 } pair || !TryLong(pair[0], out var from) || !TryLong(pair[1], out var to))
                    throw Malformed("abandoned_versions holds something other than [from, to] pairs");
                filter.abandoned.Add((from, to));
            }
        }
        return filter;
    }

    private static bool TryLong(JsonNode? node, out long value)
    {
        value = 0;
        return node is JsonValue json && json.TryGetValue(out value);
    }

    private static InvalidDataException Malformed(string what) => new($"{StateFiles.Worker}: 'observation' is malformed: {what}");
}
