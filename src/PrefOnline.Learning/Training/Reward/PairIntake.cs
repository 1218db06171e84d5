namespace PrefOnline.Learning.Training.Reward;

/// <summary>What happened to one incoming preference pair.</summary>
/// <param name="Route">Training, held out, or rejected.</param>
/// <param name="Agreed">Whether the reward model, before training on anything new, scored chosen strictly
/// above rejected (null when not scored: rejected pairs, or scoring turned off). Feed it to
/// <see cref="Guardrails.Guardrail.ObserveRewardModelPrediction"/>: it is progressive validation, an
/// honest accuracy on data the model has not seen.</param>
/// <param name="Problem">Why a rejected pair was refused.</param>
public sealed record PairIntake(LabelRoute Route, bool? Agreed, string? Problem = null);
