namespace PrefOnline.Experiments.Length;

/// <summary>Everything a length experiment produced.</summary>
public sealed record LengthResults(
    LengthOptions Options,
    LengthCorpus Corpus,
    IReadOnlyList<LengthReferenceStats> References,
    IReadOnlyList<LengthRunResult> Runs,
    IReadOnlyList<LengthSummary> Summaries,
    double Seconds);

/// <summary>One seed's SFT-fitted reference policy, measured exactly.</summary>
/// <param name="TotalVariation">Total-variation distance between its length distribution (valid mass
/// renormalised) and the corpus's: how well the SFT fitted the corpus.</param>
/// <param name="Rewards">Its reward on each task.</param>
/// <param name="OfflineMeanLength">Mean valid length of each task's offline dataset.</param>
public sealed record LengthReferenceStats(
    int Seed,
    double MeanLength,
    double ValidMass,
    double TotalVariation,
    IReadOnlyDictionary<LengthTask, double> Rewards,
    IReadOnlyDictionary<LengthTask, double> OfflineMeanLength,
    double PretrainSeconds);

/// <summary>One task × method × mode × seed × T × batch run.</summary>
/// <param name="Curve">Measurements before training (update 0), every EvaluateEvery updates and at the end.</param>
/// <param name="GradientSteps">Inner steps applied over all updates.</param>
/// <param name="SkippedSteps">Inner steps the NaN/Inf guard skipped.</param>
/// <param name="Pairs">Pairs trained on over all updates (pairwise methods).</param>
/// <param name="FinalKl">KL(π‖π_ref) per sequence reported by the last update (nats).</param>
/// <param name="SameRunAs">Set when this run is another task's identical run reused (online skew = online min), not a rerun.</param>
public sealed record LengthRunResult(
    LengthTask Task,
    string Method,
    LengthMode Mode,
    int Seed,
    int InnerSteps,
    int PromptsPerUpdate,
    double LearningRate,
    IReadOnlyList<LengthCurvePoint> Curve,
    int Updates,
    int GradientSteps,
    int SkippedSteps,
    long Pairs,
    long Samples,
    double? FinalKl,
    double Seconds,
    LengthTask? SameRunAs = null)
{
    public LengthCurvePoint Final => Curve[^1];
}

/// <summary>One task × method × mode × T × batch over seeds: mean and sample standard deviation (n − 1;
/// 0 for one seed) of the final reward and mean valid length, and of the curve's average reward over the samples drawn (how fast; see LengthExperiment.CurveAverage).</summary>
public sealed record LengthSummary(
    LengthTask Task,
    string Method,
    LengthMode Mode,
    int InnerSteps,
    int PromptsPerUpdate,
    int Seeds,
    double Reward,
    double RewardStd,
    double MeanLength,
    double MeanLengthStd,
    double ValidMass,
    double CurveReward,
    double CurveRewardStd);

/// <summary>One point of a run's learning curve: after <paramref name="Update"/> updates
/// (<paramref name="Samples"/> samples drawn), the exact reward, mean valid length and valid mass.</summary>
public sealed record LengthCurvePoint(int Update, long Samples, double Reward, double MeanLength, double ValidMass);

/// <summary>A policy measured exactly on the length corpus (no sampling): averaged over the prompts.</summary>
/// <param name="Reward">E[r] of the task (invalid completions earn 0).</param>
/// <param name="MeanLength">E[L | valid]: the mean length of the valid completions.</param>
/// <param name="ValidMass">P(valid): the probability of a valid completion.</param>
/// <param name="LengthProbabilities">P(valid, L = l) for l = 0..MaxLength.</param>
public sealed record LengthEvaluation(double Reward, double MeanLength, double ValidMass, IReadOnlyList<double> LengthProbabilities);
