namespace PrefOnline.Learning.Experiments.Length;

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
