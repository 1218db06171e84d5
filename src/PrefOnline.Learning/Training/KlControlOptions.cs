namespace PrefOnline.Learning.Training;

/// <summary>
/// The KL-to-reference leash of a <see cref="Learner"/>: a penalty c·KL added to any objective, with c
/// either fixed or steered towards a target KL by the proportional controller of Ziegler et al. 2019
/// (<see cref="Objectives.AdaptiveKlController"/>). The penalty's per-token estimator is
/// <see cref="Objectives.ObjectiveOptions.KlEstimator"/> (k2 by default).
/// </summary>
public sealed record KlControlOptions
{
    /// <summary>c (or the adaptive controller's starting c). 0 with no <see cref="TargetKl"/> turns the
    /// penalty off. 0.05 is a common fixed value for on-policy RLHF (TRL's PPO uses 0.05 fixed, 0.2 adaptive).</summary>
    public double Coefficient { get; init; } = 0.05;

    /// <summary>Target KL(π‖π_ref) in nats per sequence; null keeps <see cref="Coefficient"/> fixed.
    /// (TRL's adaptive default is 6.)</summary>
    public double? TargetKl { get; init; }

    /// <summary>The adaptive controller's horizon in samples (TRL: 10,000): c moves by at most ±20 % × batch/horizon per update.</summary>
    public double Horizon { get; init; } = 10_000;

    /// <summary>True when the penalty can ever be non-zero (then the learner needs a reference model).</summary>
    public bool Enabled => Coefficient > 0 || TargetKl is not null;

    public void Validate()
    {
        if (!(Coefficient >= 0) || double.IsInfinity(Coefficient))
            throw new ArgumentOutOfRangeException(nameof(Coefficient), Coefficient, "the KL coefficient must be a finite number ≥ 0");
        if (TargetKl is { } target)
        {
            if (!(target > 0) || double.IsInfinity(target))
                throw new ArgumentOutOfRangeException(nameof(TargetKl), target, "the target KL must be a positive finite number of nats");
            if (!(Coefficient > 0))
                throw new ArgumentOutOfRangeException(nameof(Coefficient), Coefficient, "an adaptive KL controller needs a positive starting coefficient (it scales c geometrically)");
            if (!(Horizon > 0) || double.IsInfinity(Horizon))
                throw new ArgumentOutOfRangeException(nameof(Horizon), Horizon, "the horizon must be a positive finite number of samples");
        }
    }
}
