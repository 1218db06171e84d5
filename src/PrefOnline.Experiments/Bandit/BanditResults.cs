namespace PrefOnline.Experiments.Bandit;

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

/// <summary>One method × mode × seed.</summary>
/// <param name="FinalReward">Expected reward of the final policy on the held-out states.</param>
/// <param name="Curve">Expected held-out reward before training (index 0) and after every gradient step.</param>
/// <param name="GradientSteps">Steps taken (offline T; on-policy epochs × T).</param>
/// <param name="Samples">Reward queries: samples drawn and scored.</param>
/// <param name="Pairs">Preference pairs formed over all batches (0 for methods without pairs).</param>
public sealed record BanditRunResult(
    string Method,
    BanditMode Mode,
    int Seed,
    double LearningRate,
    double FinalReward,
    IReadOnlyList<double> Curve,
    int GradientSteps,
    long Samples,
    long Pairs,
    double Seconds);

/// <summary>
/// Held-out reward of one method × mode over seeds, each as mean and sample standard deviation (n − 1
/// in the denominator; 0 for a single seed).
/// </summary>
/// <param name="Mean">Final reward, mean over seeds.</param>
/// <param name="BudgetMean">Reward once the run had drawn <paramref name="BudgetSamples"/> samples (the
/// offline batch's size): the end of training for offline runs, an early epoch for on-policy ones. This
/// compares modes at equal data; the final reward compares them at equal epochs of the protocol.</param>
/// <param name="CurveMean">The average of the reward curve over all gradient steps (area under it,
/// normalised): how fast, not only how far.</param>
public sealed record BanditSummary(
    string Method,
    BanditMode Mode,
    double Mean,
    double Std,
    int Seeds,
    long BudgetSamples,
    double BudgetMean,
    double BudgetStd,
    double CurveMean,
    double CurveStd);
