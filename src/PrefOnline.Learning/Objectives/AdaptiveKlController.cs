namespace PrefOnline.Learning.Objectives;

/// <summary>
/// The target-KL proportional controller of Ziegler et al. 2019 ("Fine-Tuning Language Models from
/// Human Preferences", §2.2), in the form TRL and the paper's code use:
/// <code>
///   e  = clip(KL / KL_target − 1, −0.2, 0.2)      proportional error, bounded so one odd batch cannot swing β
///   β ← β · (1 + e · n / H)                        n = samples in the batch, H = horizon (samples)
/// </code>
/// Ziegler's K_β = 0.1 per batch corresponds to n/H = 0.1. Above target the penalty grows, below it
/// shrinks, geometrically, never crossing zero (the factor stays in [0.8, 1.2] while n ≤ H).
/// </summary>
public sealed class AdaptiveKlController : IKlController
{
    /// <summary>Bound on the proportional error (Ziegler et al. use 0.2).</summary>
    public const double ErrorClip = 0.2;

    /// <param name="initialCoefficient">β₀ &gt; 0 (TRL: 0.2; the paper's code 0.05–0.2).</param>
    /// <param name="targetKl">KL_target &gt; 0, per sequence in nats (TRL: 6).</param>
    /// <param name="horizon">H &gt; 0 in samples (TRL: 10,000).</param>
    public AdaptiveKlController(double initialCoefficient, double targetKl, double horizon)
    {
        if (!(targetKl > 0) || double.IsInfinity(targetKl)) throw new ArgumentOutOfRangeException(nameof(targetKl), targetKl, "the target KL must be a positive finite number");
        if (!(horizon > 0) || double.IsInfinity(horizon)) throw new ArgumentOutOfRangeException(nameof(horizon), horizon, "the horizon must be a positive finite number of samples");
        TargetKl = targetKl;
        Horizon = horizon;
        Restore(initialCoefficient);
    }

    public double Coefficient { get; private set; }

    public double TargetKl { get; }

    public double Horizon { get; }

    public void Update(double observedKl, long samples)
    {
        if (double.IsNaN(observedKl)) throw new ArgumentException("observed KL is NaN; the batch should have been skipped", nameof(observedKl));
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        var error = Math.Clamp(observedKl / TargetKl - 1.0, -ErrorClip, ErrorClip);
        var factor = 1.0 + error * samples / Horizon;
        // A batch larger than the horizon could push the factor below zero; a coefficient never changes sign.
        Coefficient *= Math.Max(factor, 1e-3);
    }

    public void Restore(double coefficient)
    {
        if (!(coefficient > 0) || double.IsInfinity(coefficient))
            throw new ArgumentOutOfRangeException(nameof(coefficient), coefficient, "an adaptive KL coefficient must be a positive finite number");
        Coefficient = coefficient;
    }
}
