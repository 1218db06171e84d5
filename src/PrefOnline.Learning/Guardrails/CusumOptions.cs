namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// Sensitivity of the two-sided, self-starting CUSUM in <see cref="CusumDetector"/>. Everything is in
/// units of the stream's own standard deviation σ (estimated in the warm-up), so one setting fits
/// rewards of any scale.
///
/// Measured on seeded streams by tests/PrefOnline.Learning.Tests/Guardrails/CusumDetectorTests.cs with
/// the defaults (δ = 1, h = 12, warm-up 50, gate 0.5); the tests assert the bounds in brackets:
/// <list type="bullet">
/// <item>false alarms on stationary noise: 0.3 % of N(μ, σ²) streams and 0.7 % of uniform 1..5 star
///   streams alarm within 2,000 armed observations [≤ 2 %]; a Python re-simulation of 1,500 streams
///   gave 0.1 % (h = 10 would give about 3 %, i.e. one false alarm per ~65,000 observations);</item>
/// <item>a 2σ mean shift is flagged after a median of 8 observations, p95 13, max 15 [median ≤ 10, all ≤ 30];</item>
/// <item>a 1σ shift after a median of 23, p95 51 [median ≤ 30, 95 % within 100].</item>
/// </list>
/// Rules of thumb (Siegmund's approximation): each +1 on h multiplies the time between false alarms
/// by about e^(2k·1) ≈ 2.7 (for δ = 1) and adds about 1/(shift − δ/2) observations of delay; a
/// smaller δ detects small shifts sooner and alarms falsely more often. The model-reward stream is
/// fed one value per update, so "observations" there are updates; the human stream, one per rating.
/// </summary>
public sealed record CusumOptions
{
    /// <summary>δ: the smallest mean shift worth detecting, in σ. The CUSUM allowance is k = δ/2.</summary>
    public double Shift { get; init; } = 1.0;

    /// <summary>h (the decision threshold, "λ" in Page–Hinkley terms), in σ. An alarm fires when a CUSUM statistic exceeds it.</summary>
    public double Threshold { get; init; } = 12.0;

    /// <summary>Observations used to estimate the baseline mean and σ before the detector arms (also after every alarm).</summary>
    public int WarmUp { get; init; } = 50;

    /// <summary>
    /// Once armed, the baseline keeps learning from observations while both statistics are below
    /// <c>BaselineGate · h</c> (the stream looks in control), which shrinks the warm-up's estimation
    /// error and absorbs slow trends; observations that push a statistic up are kept out of it, so a
    /// real shift is not absorbed. 0 freezes the baseline after the warm-up.
    /// </summary>
    public double BaselineGate { get; init; } = 0.5;

    /// <summary>Floor for σ, in the stream's own units: a warm-up of identical values (all ratings 5) must not make σ zero.</summary>
    public double MinStdDev { get; init; } = 1e-3;

    /// <summary>Every problem with these options, empty when valid.</summary>
    public IReadOnlyList<string> Validate(string prefix)
    {
        var errors = new List<string>();
        if (!(Shift > 0) || !double.IsFinite(Shift)) errors.Add($"{prefix}.Shift must be a positive number of standard deviations (got {Shift}).");
        if (!(Threshold > 0) || !double.IsFinite(Threshold)) errors.Add($"{prefix}.Threshold must be a positive number of standard deviations (got {Threshold}).");
        if (WarmUp < 2) errors.Add($"{prefix}.WarmUp must be at least 2 observations (got {WarmUp}).");
        if (!(BaselineGate >= 0 && BaselineGate <= 1)) errors.Add($"{prefix}.BaselineGate must be in [0, 1] (got {BaselineGate}).");
        if (!(MinStdDev > 0) || !double.IsFinite(MinStdDev)) errors.Add($"{prefix}.MinStdDev must be positive (got {MinStdDev}).");
        return errors;
    }
}
