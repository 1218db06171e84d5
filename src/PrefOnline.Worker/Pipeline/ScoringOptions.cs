using PrefOnline.Learning.Configuration;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Configuration section <c>Scoring</c>: each generated group of K rollouts waits up to
/// <see cref="LabelWait"/> for human labels that name its rollouts (joined by rollout id); then every
/// rollout is scored — a joined rating gives its reward, a joined preference fixes the order of the two
/// rollouts it names, the online reward model scores the rest — and the group enters the replay buffer.
/// </summary>
public sealed class ScoringOptions : IValidatedOptions
{
    public const string SectionName = "Scoring";

    /// <summary>How long a group waits for human labels before the reward model scores it. 0 = score at once (labels then only train the reward model).</summary>
    public TimeSpan LabelWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most rollouts waiting for labels; when full, generation (role all) or the rollouts consumer (role learner) waits (bounded memory, part of every checkpoint).</summary>
    public int MaxPendingRollouts { get; set; } = 2048;

    /// <summary>How often waiting groups are checked for expiry.</summary>
    public TimeSpan Tick { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Rows per reward-model forward when scoring.</summary>
    public int RewardBatchSize { get; set; } = 64;

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Duration(nameof(LabelWait), LabelWait, TimeSpan.Zero, TimeSpan.FromHours(1));
        p.Range(nameof(MaxPendingRollouts), MaxPendingRollouts, 1, 1_000_000);
        p.Duration(nameof(Tick), Tick, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(10));
        p.Range(nameof(RewardBatchSize), RewardBatchSize, 1, 4096);
        return p.Items;
    }
}
