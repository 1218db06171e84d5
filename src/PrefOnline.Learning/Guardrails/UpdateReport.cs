namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// What one learner update produced, as the guardrail needs it. Missing diagnostics are null (an
/// objective without a reference has no KL); present ones are checked for NaN/Inf.
/// </summary>
/// <param name="PolicyVersion">The version this update produced.</param>
/// <param name="Loss">Mean loss of the update's last inner step.</param>
/// <param name="GradNorm">Gradient norm before clipping.</param>
/// <param name="KlToReference">KL(policy ‖ reference) on the batch, nats per sequence.</param>
/// <param name="Entropy">Mean per-token policy entropy, nats.</param>
/// <param name="MeanReward">Mean reward-model score of the update's on-policy samples (the model-reward drift stream).</param>
public sealed record UpdateReport(
    long PolicyVersion,
    double? Loss = null,
    double? GradNorm = null,
    double? KlToReference = null,
    double? Entropy = null,
    double? MeanReward = null);
