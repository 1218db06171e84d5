namespace PrefOnline.Learning.Objectives;

/// <summary>The names of <see cref="ObjectiveResult.Diagnostics"/>: stable, snake_case, safe as metric suffixes.</summary>
public static class DiagnosticNames
{
    /// <summary>The total loss, penalty included.</summary>
    public const string Loss = "loss";

    /// <summary>The objective's own term, before the KL penalty.</summary>
    public const string ObjectiveLoss = "objective_loss";

    /// <summary>Mean log π_θ of the sequences in the batch (nats).</summary>
    public const string LogProbMean = "logp_mean";

    /// <summary>Pairs the pairwise objective used.</summary>
    public const string Pairs = "pairs";

    public const string LogProbChosen = "logp_chosen";
    public const string LogProbRejected = "logp_rejected";

    /// <summary>DPO's implicit rewards β·(log π − log π_ref) of chosen and rejected, their margin, and
    /// the fraction of pairs where chosen's exceeds rejected's (TRL's rewards/* metrics).</summary>
    public const string RewardChosen = "reward_chosen";
    public const string RewardRejected = "reward_rejected";
    public const string RewardMargin = "reward_margin";
    public const string RewardAccuracy = "reward_accuracy";

    /// <summary>Mean of ℓ, the log-ratio margin, without β.</summary>
    public const string LogRatioMargin = "logratio_margin";

    public const string AdvantageMean = "advantage_mean";
    public const string AdvantageStd = "advantage_std";

    public const string RwrWeightMean = "rwr_weight_mean";
    public const string RwrWeightMax = "rwr_weight_max";

    /// <summary>Fraction of RWR weights cut by the clip.</summary>
    public const string RwrClippedFraction = "rwr_clipped_fraction";

    /// <summary>Fraction of (masked) tokens whose PPO term was clipped (TRL's pg_clipfrac).</summary>
    public const string ClipFraction = "clip_fraction";

    /// <summary>Per-sequence approximate KL(μ‖π) from the ratio ρ, Σ_t (ρ − 1) − log ρ (CleanRL's approx_kl).</summary>
    public const string ApproxKl = "approx_kl";

    public const string RatioMean = "ratio_mean";

    /// <summary>Per-sequence KL(π‖π_ref) estimate Σ_t (log π − log π_ref) (k1: unbiased on on-policy samples).</summary>
    public const string KlToReference = "kl_to_reference";

    /// <summary>The penalty's estimator value (per sequence) and the coefficient it was multiplied by.</summary>
    public const string KlPenalty = "kl_penalty";
    public const string KlCoefficient = "kl_coefficient";
}
