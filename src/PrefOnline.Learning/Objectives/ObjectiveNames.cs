namespace PrefOnline.Learning.Objectives;

/// <summary>
/// The names the one switch in <see cref="TrainingObjective"/> understands (configuration files and the
/// CLI use these strings). Grouped as the paper groups them: maximum likelihood, maximum likelihood
/// with a negative gradient, on-policy RL, and contrastive (also negative-gradient) methods.
/// </summary>
public static class ObjectiveNames
{
    /// <summary>Pref-FT / SFT: maximum likelihood on the preferred response of every pair (or on every sequence).</summary>
    public const string Sft = "sft";

    /// <summary>Iterated Best-of-N SFT: maximum likelihood on the best of N samples per prompt (best-vs-worst pairs).</summary>
    public const string BestOfN = "best_of_n";

    /// <summary>Reward-weighted regression: maximum likelihood weighted by min(exp(r/τ), w_max).</summary>
    public const string Rwr = "rwr";

    /// <summary>Maximum likelihood on the best plus a pushed-down worst: −log π(w) + β·log π(l).</summary>
    public const string NegativeGradientSft = "negative_gradient_sft";

    /// <summary>REINFORCE with a baseline already folded into the advantages (moving average or leave-one-out = RLOO).</summary>
    public const string Reinforce = "reinforce";

    /// <summary>PPO-clip, value-free: per-token ratio against the behaviour policy, clipped at 1 ± ε.</summary>
    public const string Ppo = "ppo";

    /// <summary>DPO: −log σ(β·ℓ).</summary>
    public const string Dpo = "dpo";

    /// <summary>Conservative DPO (label smoothing ε): −(1−ε)·log σ(β·ℓ) − ε·log σ(−β·ℓ).</summary>
    public const string ConservativeDpo = "cdpo";

    /// <summary>IPO: (ℓ − 1/(2β))².</summary>
    public const string Ipo = "ipo";

    /// <summary>Every valid name, in the order of the table in <see cref="Losses"/>.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Sft, BestOfN, Rwr, NegativeGradientSft, Reinforce, Ppo, Dpo, ConservativeDpo, Ipo];
}
