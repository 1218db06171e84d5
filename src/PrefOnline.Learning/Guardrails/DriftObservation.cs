namespace PrefOnline.Learning.Guardrails;

/// <summary>What a <see cref="CusumDetector"/> concluded after one observation.</summary>
/// <param name="Phase">Phase after the observation (an alarm puts the detector back into warm-up).</param>
/// <param name="Alarm">The direction of the shift detected by this observation, or <see cref="DriftDirection.None"/>.</param>
/// <param name="Score">max(g⁺, g⁻) / h before any reset: 0 in control, ≥ 1 at an alarm. This is <c>reward_drift_score</c>.</param>
/// <param name="BaselineMean">The in-control mean the shift is measured against (NaN while warming up).</param>
/// <param name="BaselineStdDev">The in-control σ (NaN while warming up).</param>
/// <param name="Accepted">False when the value was not finite and was ignored.</param>
public readonly record struct DriftObservation(
    DriftPhase Phase,
    DriftDirection Alarm,
    double Score,
    double BaselineMean,
    double BaselineStdDev,
    bool Accepted);
