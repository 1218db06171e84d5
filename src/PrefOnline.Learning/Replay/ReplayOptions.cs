using PrefOnline.Learning.Configuration;

namespace PrefOnline.Learning.Replay;

/// <summary>
/// Configuration section <c>Replay</c>: the bounded buffers between scoring and the learner — scored
/// rollouts, and human preference pairs trained on directly. Both are part of every checkpoint.
/// </summary>
public sealed record ReplayOptions : IValidatedOptions
{
    public const string SectionName = "Replay";

    /// <summary>Most scored rollouts held (memory bound).</summary>
    public int Capacity { get; set; } = 4096;

    /// <summary>Fifo (drop the oldest) or Reservoir (a uniform sample of everything offered).</summary>
    public EvictionPolicy Eviction { get; set; } = EvictionPolicy.Fifo;

    /// <summary>Updates one rollout may be trained in (the paper's sample reuse; 1 = purely on-policy).</summary>
    public int MaxReuse { get; set; } = 2;

    /// <summary>A rollout expires once the policy is this many updates newer than the one that generated it.</summary>
    public long MaxStaleness { get; set; } = 4;

    /// <summary>Share of never-trained-on rollouts in each batch; the rest are replayed ones.</summary>
    public double FreshFraction { get; set; } = 0.75;

    /// <summary>Most human preference pairs held for direct training.</summary>
    public int HumanPairCapacity { get; set; } = 2048;

    /// <summary>Updates one human pair may be trained in.</summary>
    public int HumanPairMaxReuse { get; set; } = 2;

    /// <summary>A human pair expires after this many updates.</summary>
    public long HumanPairMaxStaleness { get; set; } = 8;

    /// <summary>Seed of the buffers' draws.</summary>
    public ulong Seed { get; set; } = 3;

    /// <summary>The scored-rollout buffer's limits.</summary>
    public ReplayLimits RolloutLimits => new()
    {
        Capacity = Capacity, Eviction = Eviction, MaxReuse = MaxReuse, MaxStaleness = MaxStaleness, FreshFraction = FreshFraction, Seed = Seed,
    };

    /// <summary>The human-pair buffer's limits: always FIFO, every pair fresh until drawn, its own seed.</summary>
    public ReplayLimits HumanPairLimits => new()
    {
        Capacity = HumanPairCapacity, Eviction = EvictionPolicy.Fifo, MaxReuse = HumanPairMaxReuse, MaxStaleness = HumanPairMaxStaleness, FreshFraction = 1.0, Seed = Seed + 1,
    };

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(Capacity), Capacity, 1, 10_000_000);
        if (!Enum.IsDefined(Eviction)) p.Add(nameof(Eviction), $"must be Fifo or Reservoir (got {Eviction})");
        p.Range(nameof(MaxReuse), MaxReuse, 1, 1000);
        p.Range(nameof(MaxStaleness), MaxStaleness, 0, 1_000_000);
        p.Range(nameof(FreshFraction), FreshFraction, 0, 1);
        p.Range(nameof(HumanPairCapacity), HumanPairCapacity, 1, 10_000_000);
        p.Range(nameof(HumanPairMaxReuse), HumanPairMaxReuse, 1, 1000);
        p.Range(nameof(HumanPairMaxStaleness), HumanPairMaxStaleness, 0, 1_000_000);
        return p.Items;
    }
}
