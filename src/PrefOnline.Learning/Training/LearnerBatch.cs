using PrefOnline.Learning.Replay;
using PrefOnline.Learning.TrainingData;

namespace PrefOnline.Learning.Training;

/// <summary>
/// The data of one learner update: scored rollouts as drawn from the replay buffer (their policy
/// version and use count tell staleness and fresh vs replayed) and preference pairs (human labels, or
/// any pair already formed) to train on directly.
/// </summary>
public sealed record LearnerBatch
{
    public IReadOnlyList<ReplayEntry<Rollout>> Rollouts { get; init; } = [];

    public IReadOnlyList<ReplayEntry<PreferencePair>> HumanPairs { get; init; } = [];

    /// <summary>Rollouts drawn for the first time (use count 1).</summary>
    public int FreshRollouts => Rollouts.Count(e => e.Uses == 1);

    public bool IsEmpty => Rollouts.Count == 0 && HumanPairs.Count == 0;

    /// <summary>A batch from replay-buffer draws (either may be null).</summary>
    public static LearnerBatch From(ReplayBatch<Rollout>? rollouts, ReplayBatch<PreferencePair>? humanPairs = null) => new()
    {
        Rollouts = rollouts?.Entries ?? [],
        HumanPairs = humanPairs?.Entries ?? [],
    };

    /// <summary>A batch of items that did not come through a buffer: each counts as fresh (first use),
    /// produced by the policy version it records.</summary>
    public static LearnerBatch Of(IEnumerable<Rollout> rollouts, IEnumerable<PreferencePair>? humanPairs = null)
    {
        ArgumentNullException.ThrowIfNull(rollouts);
        long sequence = 0;
        var r = rollouts.Select(x => new ReplayEntry<Rollout>(x, x.UpdateCount, 1, sequence++)).ToList();
        var p = (humanPairs ?? []).Select(x => new ReplayEntry<PreferencePair>(x, x.UpdateCount, 1, sequence++)).ToList();
        return new LearnerBatch { Rollouts = r, HumanPairs = p };
    }
}
