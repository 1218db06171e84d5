namespace PrefOnline.Learning.Experiments.Bandit;

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
