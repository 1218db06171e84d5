namespace PrefOnline.Learning.Experiments.Bandit;

/// <summary>Everything a bandit experiment produced.</summary>
/// <param name="ReferenceRewards">E_{π_ref}[r] of each seed's reference histogram.</param>
/// <param name="PretrainedRewards">Held-out reward of the policy after the pre-fit, per seed and mode
/// (every method of that seed and mode starts from it).</param>
public sealed record BanditResults(
    BanditOptions Options,
    IReadOnlyList<double> ReferenceRewards,
    IReadOnlyList<BanditRunResult> Runs,
    IReadOnlyList<BanditSummary> Summaries,
    IReadOnlyDictionary<BanditMode, IReadOnlyList<double>> PretrainedRewards,
    double Seconds);
