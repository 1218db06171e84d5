namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// Names of the guardrail's checks. They appear in reasons and as the <c>check</c> label of
/// <c>prefonline_guardrail_trips_total</c>, so they are stable, lower-case identifiers.
/// </summary>
public static class GuardrailChecks
{
    /// <summary>CUSUM on the on-policy reward (the reward model's score of each update's batch, averaged).</summary>
    public const string ModelRewardDrift = "drift_model";
    /// <summary>CUSUM on human ratings as they arrive.</summary>
    public const string HumanRatingDrift = "drift_human";
    /// <summary>KL from the policy to the reference above the budget.</summary>
    public const string KlBudget = "kl_budget";
    /// <summary>The reward model's rolling accuracy on incoming human preference pairs below the floor.</summary>
    public const string RewardModelAccuracy = "reward_model_accuracy";
    /// <summary>NaN or ±Inf in an update's loss, gradient norm, KL, entropy or reward.</summary>
    public const string NonFinite = "non_finite";

    public static IReadOnlyList<string> All { get; } = [ModelRewardDrift, HumanRatingDrift, KlBudget, RewardModelAccuracy, NonFinite];
}
