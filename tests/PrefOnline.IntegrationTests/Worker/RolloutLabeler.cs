using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The test's labelers: reads the rollouts the worker publishes (each one must pass the rollout contract),
/// and once all K samples of a (prompt, policy version) group are there, labels the group on the feedback
/// topic — a preference naming both rollouts (the shorter completion is chosen), or, when the two texts are
/// equal (a preference would be an identical pair), one rating per rollout. Labels alternate partitions.
/// Deterministic given the rollouts: ids are a counter, rules are fixed.
/// </summary>
public sealed class RolloutLabeler(WorkerCluster cluster, TopicTail rollouts, int samplesPerPrompt)
{
    private readonly RecordValidator validator = new(new ValidationLimits(), SchemaNames.RolloutTopic);
    private readonly Dictionary<string, List<RolloutRecord>> groups = new(StringComparer.Ordinal);
    private readonly List<string> produced = [];
    private readonly HashSet<string> rolloutIds = new(StringComparer.Ordinal);
    private int read;

    /// <summary>Ids of every label produced so far.</summary>
    public IReadOnlyList<string> Produced
    {
        get
        {
            lock (produced) return produced.ToList();
        }
    }

    /// <summary>Every rollout read so far.</summary>
    public List<RolloutRecord> Rollouts { get; } = [];

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
            Rollouts.Add(rollout);
            var key = $"{rollout.PromptId}@{rollout.PolicyVersion}";
            if (!groups.TryGetValue(key, out var group)) groups[key] = group = [];
            group.Add(rollout);
            if (group.Count != samplesPerPrompt) continue;
            labelled += Label(group);
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

    private int Label(List<RolloutRecord> group)
    {
        var ordered = group.OrderBy(r => r.Completion.Length).ThenBy(r => r.Completion, StringComparer.Ordinal).ToList();
        var (chosen, rejected) = (ordered[0], ordered[^1]);
        if (chosen.Completion != rejected.Completion)
        {
            Send(id => new PreferenceRecord(id, chosen.Prompt, chosen.Completion, rejected.Completion, new PreferenceRolloutIds(chosen.Id, rejected.Id)));
            return 1;
        }
        foreach (var rollout in group) Send(id => new RatingRecord(id, rollout.Prompt, rollout.Completion, 1.0, rollout.Id));
        return group.Count;
    }

    private void Send(Func<string, StreamRecord> build)
    {
        string id;
        int partition;
        lock (produced)
        {
            id = $"label-{produced.Count:D5}";
            partition = produced.Count % WorkerCluster.InputPartitions;
            produced.Add(id);
        }
        cluster.Produce(WorkerCluster.Feedback, partition, build(id));
    }
}
