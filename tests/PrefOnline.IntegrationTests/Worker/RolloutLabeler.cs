using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The tests' users: reads the rollouts the worker publishes (each one must pass the rollout contract, and no
/// rollout id may come twice), and once all K samples of a (prompt, policy version) group are there, labels the
/// group on the feedback topic, alternating partitions. What they say about a group is the test's
/// (<paramref name="labels"/>); by default the shorter completion is chosen in a preference naming both rollouts,
/// or, when the two texts are equal (a preference would be an identical pair), each rollout is rated 1. The default
/// is deterministic given the rollouts: ids are a counter, rules are fixed.
/// </summary>
/// <param name="labels">The labels for one complete group (their ids their own); null for the default rule.</param>
public sealed class RolloutLabeler(WorkerCluster cluster, TopicTail rollouts, int samplesPerPrompt, Func<IReadOnlyList<RolloutRecord>, IEnumerable<StreamRecord>>? labels = null)
{
    private readonly RecordValidator validator = new(new ValidationLimits(), SchemaNames.RolloutTopic);
    private readonly Dictionary<string, List<RolloutRecord>> groups = new(StringComparer.Ordinal);
    private readonly List<string> produced = [];
    private readonly List<RolloutRecord> rolloutsRead = [];
    private readonly HashSet<string> rolloutIds = new(StringComparer.Ordinal);
    private int read;
    private int nextId;

    /// <summary>Ids of every label produced so far.</summary>
    public IReadOnlyList<string> Produced
    {
        get
        {
            lock (produced) return produced.ToList();
        }
    }

    /// <summary>Every rollout read so far, in the order read: a snapshot (tests read it while <see cref="RunAsync"/> adds).</summary>
    public IReadOnlyList<RolloutRecord> Rollouts
    {
        get
        {
            lock (rolloutsRead) return rolloutsRead.ToList();
        }
    }

    /// <summary>Labels what arrived since the last call; returns how many labels were produced.</summary>
    public int LabelNew()
    {
        var records = rollouts.Records;
        var labelled = 0;
        for (; read < records.Count; read++)
        {
            var result = validator.Validate(records[read].Message.Value);
            Assert.True(result.IsValid, $"rollout {records[read].TopicPartitionOffset} breaks the contract: {result}");
            var rollout = (RolloutRecord)result.Record!;
            Assert.True(rolloutIds.Add(rollout.Id), $"rollout id {rollout.Id} published twice");
            lock (rolloutsRead) rolloutsRead.Add(rollout);
            var key = $"{rollout.PromptId}@{rollout.PolicyVersion}";
            if (!groups.TryGetValue(key, out var group)) groups[key] = group = [];
            group.Add(rollout);
            if (group.Count != samplesPerPrompt) continue;
            groups.Remove(key);
            foreach (var label in (labels ?? ShorterChosen)(group))
            {
                Send(label);
                labelled++;
            }
        }
        return labelled;
    }

    /// <summary>Labels new rollouts until <paramref name="stop"/> fires.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            LabelNew();
            try
            {
                await Task.Delay(50, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private IEnumerable<StreamRecord> ShorterChosen(IReadOnlyList<RolloutRecord> group)
    {
        var ordered = group.OrderBy(r => r.Completion.Length).ThenBy(r => r.Completion, StringComparer.Ordinal).ToList();
        var (chosen, rejected) = (ordered[0], ordered[^1]);
        if (chosen.Completion != rejected.Completion)
            return [new PreferenceRecord(NextId(), chosen.Prompt, chosen.Completion, rejected.Completion, new PreferenceRolloutIds(chosen.Id, rejected.Id))];
        return group.Select(rollout => (StreamRecord)new RatingRecord(NextId(), rollout.Prompt, rollout.Completion, 1.0, rollout.Id)).ToList();
    }

    private string NextId() => $"label-{nextId++:D5}";

    private void Send(StreamRecord label)
    {
        var id = label switch
        {
            PreferenceRecord preference => preference.Id,
            RatingRecord rating => rating.Id,
            _ => throw new ArgumentException($"not a label: {label.Schema}", nameof(label)),
        };
        int partition;
        lock (produced)
        {
            partition = produced.Count % WorkerCluster.InputPartitions;
            produced.Add(id);
        }
        cluster.Produce(WorkerCluster.Feedback, partition, label);
    }
}
