namespace PrefOnline.Learning.Experiments.Length;

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
