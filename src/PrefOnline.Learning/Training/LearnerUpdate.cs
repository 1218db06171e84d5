using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Learning.Training;

/// <summary>
/// What one <see cref="Learner"/> update did. Loss, gradient norm, KL, entropy and the objective's
/// diagnostics come from the last applied inner step (its forward pass, before its optimizer step);
/// null when no step was applied or the quantity does not exist (no reference model → no KL).
/// </summary>
/// <param name="UpdateCount">The learner's <see cref="Learner.UpdateCount"/> after the update (one more than before when <paramref name="Applied"/>).</param>
/// <param name="Applied">At least one inner step changed the weights.</param>
/// <param name="InnerSteps">Inner steps applied (≤ T).</param>
/// <param name="SkippedSteps">Inner steps skipped by the NaN/Inf guard (0 or 1: the update stops at a bad step).</param>
/// <param name="SkipReason">Why the update stopped early or did nothing.</param>
/// <param name="Loss">Total loss (objective + KL penalty) of the last applied step.</param>
/// <param name="InitialLoss">Loss of the first inner step, before any update on this batch.</param>
/// <param name="GradNorm">Global L2 gradient norm of the last applied step, before clipping.</param>
/// <param name="KlToReference">KL(π‖π_ref) per sequence on the batch (nats), estimator <see cref="LearnerOptions.KlMetric"/>.</param>
/// <param name="Entropy">Mean per-token entropy of the policy on the batch's completion positions (nats).</param>
/// <param name="KlCoefficient">The KL-penalty coefficient the update used (0 without a reference).</param>
/// <param name="MeanReward">Mean reward of the batch's rollouts (null without rollouts).</param>
/// <param name="FreshMeanReward">Mean reward of the rollouts drawn for the first time (the on-policy samples).</param>
/// <param name="Rows">Sequences in the training batch (rows a pairwise objective does not use are dropped before the forward).</param>
/// <param name="Rollouts">Rollouts in the batch.</param>
/// <param name="FreshRollouts">Of which drawn for the first time.</param>
/// <param name="HumanPairs">Human pairs in the batch.</param>
/// <param name="Pairs">Pairs the objective trained on (on-policy + human; 0 for non-pairwise objectives).</param>
/// <param name="InvalidItems">Rollouts and pairs dropped as unusable.</param>
/// <param name="CompletionTokens">Completion tokens in the batch.</param>
/// <param name="TokensProcessed">All tokens (prompt + completion) through the policy, summed over applied and attempted steps.</param>
/// <param name="StalenessMean">Mean of (policy version − rollout's version) over the batch's rollouts.</param>
/// <param name="StalenessMax">Largest such difference.</param>
/// <param name="Diagnostics">The objective's named diagnostics (<see cref="Objectives.DiagnosticNames"/>).</param>
/// <param name="Seconds">Wall time of the update.</param>
public sealed record LearnerUpdate(
    long UpdateCount,
    bool Applied,
    int InnerSteps,
    int SkippedSteps,
    LearnerSkipReason SkipReason,
    double? Loss,
    double? InitialLoss,
    double? GradNorm,
    double? KlToReference,
    double? Entropy,
    double KlCoefficient,
    double? MeanReward,
    double? FreshMeanReward,
    int Rows,
    int Rollouts,
    int FreshRollouts,
    int HumanPairs,
    int Pairs,
    int InvalidItems,
    long CompletionTokens,
    long TokensProcessed,
    double? StalenessMean,
    long? StalenessMax,
    IReadOnlyDictionary<string, double> Diagnostics,
    double Seconds)
{
    /// <summary>What the guardrail reads. Its reward stream is the on-policy one: the fresh rollouts'
    /// mean reward, or the whole batch's when none was fresh.</summary>
    public UpdateReport ToReport() => new(UpdateCount, Loss, GradNorm, KlToReference, Entropy, FreshMeanReward ?? MeanReward);
}
