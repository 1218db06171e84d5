using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// Every loss of Tajwar et al. 2024 ("Preference Fine-Tuning of LLMs Should Leverage Suboptimal,
/// On-Policy Data", §4 and Table 1), side by side, each a pure function of log-prob tensors: inputs
/// are never modified or disposed, the result is a fresh scalar to minimise (a mean over the batch).
/// <code>
///   notation   log π(y)  = log π_θ(y | x), one completion, reduced over its tokens by the caller
///              w, l      = chosen (winner) and rejected (loser) of a pair
///              ℓ         = [log π(w) − log π_ref(w)] − [log π(l) − log π_ref(l)]
///              A         = advantage (reward minus a baseline);  ρ_t = π(y_t)/μ(y_t), μ = behaviour
///
///   name                   loss                                                 family           reference
///   sft / best_of_n        −E[log π(w)]                                         max-likelihood   Pref-FT; iterated BoN (paper §4)
///   rwr                    −E[min(e^{r/τ}, w_max) · log π(y)]                   max-likelihood   Peters &amp; Schaal 2007; paper code
///   negative_gradient_sft  −E[log π(w)] + β·E[log π(l)]                         ML + negative    paper bandit code, "worst_action"
///   reinforce              −E[A · log π(y)]                                     on-policy RL     Williams 1992; RLOO: Ahmadian 2024
///   ppo                    E[Σ_t max(−A·ρ_t, −A·clip(ρ_t, 1−ε, 1+ε))]           on-policy RL     Schulman 2017 (value-free)
///   dpo                    −E[log σ(β·ℓ)]                                       contrastive      Rafailov 2023, eq. 7
///   cdpo                   −E[(1−ε)·log σ(β·ℓ) + ε·log σ(−β·ℓ)]                 contrastive      Mitchell 2023
///   ipo                    E[(ℓ − 1/(2β))²]                                     contrastive      Azar 2023, eq. 17
/// </code>
/// The contrastive losses and negative_gradient_sft push log π(l) down ("negative gradient"); the
/// max-likelihood ones only ever push up. The selection of w (all pairs, best vs worst, human pairs)
/// is the pair builder's job, not the loss's: sft and best_of_n are the same formula.
/// </summary>
public static class Losses
{
    /// <summary>ℓ per pair: (P,) from four (P,) tensors.</summary>
    public static Tensor LogRatioMargin(Tensor policyChosen, Tensor referenceChosen, Tensor policyRejected, Tensor referenceRejected)
    {
        using var scope = NewDisposeScope();
        return ((policyChosen - referenceChosen) - (policyRejected - referenceRejected)).MoveToOuterDisposeScope();
    }

    /// <summary>SFT / Pref-FT / (iterated) Best-of-N: −mean log π(y) over the target sequences (N,).</summary>
    public static Tensor Sft(Tensor targetLogProbs)
    {
        using var scope = NewDisposeScope();
        return targetLogProbs.mean().neg().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Reward-weighted regression: −mean(w·log π(y)) with w = min(exp(r/τ), w_max), the weights
    /// constants (no gradient through r). Normalised by the number of samples, not by Σw, as the
    /// paper's ReweightedBCTrainer does (masked mean over tokens with norm_mask = the plain mask).
    /// </summary>
    public static Tensor Rwr(Tensor logProbs, Tensor rewards, double temperature, double maxWeight)
    {
        using var scope = NewDisposeScope();
        return (RwrWeights(rewards, temperature, maxWeight) * logProbs).mean().neg().MoveToOuterDisposeScope();
    }

    /// <summary>The RWR weights min(exp(r/τ), w_max), computed as exp(min(r/τ, log w_max)) so a large
    /// reward cannot overflow to ∞ before the clip. (B,), detached.</summary>
    public static Tensor RwrWeights(Tensor rewards, double temperature, double maxWeight)
    {
        using var scope = NewDisposeScope();
        var scaled = rewards.detach() / temperature;
        if (!double.IsPositiveInfinity(maxWeight)) scaled = scaled.clamp(max: Math.Log(maxWeight));
        return scaled.exp().MoveToOuterDisposeScope();
    }

    /// <summary>Max-likelihood with a negative gradient: mean(−log π(w) + β·log π(l)).</summary>
    public static Tensor NegativeGradientSft(Tensor policyChosen, Tensor policyRejected, double negativeWeight)
    {
        using var scope = NewDisposeScope();
        return (policyRejected * negativeWeight - policyChosen).mean().MoveToOuterDisposeScope();
    }

    /// <summary>REINFORCE: −mean(A·log π(y)); the advantages are constants (detached here).</summary>
    public static Tensor Reinforce(Tensor logProbs, Tensor advantages)
    {
        using var scope = NewDisposeScope();
        return (advantages.detach() * logProbs).mean().neg().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// PPO-clip without a value head. Per token t of sequence b: ρ = exp(log π − log μ),
    /// term = max(−A_b·ρ, −A_b·clip(ρ, 1−ε, 1+ε)); summed over the masked tokens of each sequence and
    /// averaged over sequences (the paper's code: Σ over tokens, ÷ number of samples). Where the clipped
    /// branch is taken, ρ is a constant and the gradient is exactly zero: the trust region.
    /// </summary>
    /// <param name="policyTokens">(B, T) log π with history.</param>
    /// <param name="behaviourTokens">(B, T) log μ, no gradient.</param>
    /// <param name="mask">(B, T) 1 on completion tokens.</param>
    /// <param name="advantages">(B,) one advantage per sequence, broadcast over its tokens.</param>
    public static Tensor PpoClip(Tensor policyTokens, Tensor behaviourTokens, Tensor mask, Tensor advantages, double clipRange)
    {
        using var scope = NewDisposeScope();
        var terms = PpoTerms(policyTokens, behaviourTokens, advantages, clipRange).Terms;
        return (terms * FloatMask(mask, terms)).sum(1).mean().MoveToOuterDisposeScope();
    }

    /// <summary>PPO's per-token pieces, shared by the loss and its diagnostics: the ratio ρ (B, T),
    /// the unclipped term −A·ρ, and the chosen term max(−A·ρ, −A·clip ρ).</summary>
    public static (Tensor Ratio, Tensor Unclipped, Tensor Terms) PpoTerms(Tensor policyTokens, Tensor behaviourTokens, Tensor advantages, double clipRange)
    {
        using var scope = NewDisposeScope();
        var ratio = (policyTokens - behaviourTokens.detach()).exp();                // (B, T)
        var negAdvantage = advantages.detach().neg().unsqueeze(1);                   // (B, 1)
        var unclipped = negAdvantage * ratio;
        var clipped = negAdvantage * ratio.clamp(1 - clipRange, 1 + clipRange);
        var terms = maximum(unclipped, clipped);
        scope.MoveToOuter(ratio, unclipped, terms);
        return (ratio, unclipped, terms);
    }

    /// <summary>DPO: −mean log σ(β·ℓ).</summary>
    public static Tensor Dpo(Tensor logRatioMargin, double beta)
    {
        using var scope = NewDisposeScope();
        return (logRatioMargin * beta).log_sigmoid().mean().neg().MoveToOuterDisposeScope();
    }

    /// <summary>Conservative DPO: −mean[(1−ε)·log σ(β·ℓ) + ε·log σ(−β·ℓ)] (TRL's sigmoid loss with label smoothing).</summary>
    public static Tensor ConservativeDpo(Tensor logRatioMargin, double beta, double labelSmoothing)
    {
        using var scope = NewDisposeScope();
        var z = logRatioMargin * beta;
        var loss = z.log_sigmoid() * (1 - labelSmoothing) + z.neg().log_sigmoid() * labelSmoothing;
        return loss.mean().neg().MoveToOuterDisposeScope();
    }

    /// <summary>IPO: mean (ℓ − 1/(2β))². The bandit's official code writes it with the target margin
    /// m directly, (ℓ − m)²: the same loss with β = 1/(2m).</summary>
    public static Tensor Ipo(Tensor logRatioMargin, double beta)
    {
        using var scope = NewDisposeScope();
        return (logRatioMargin - 1.0 / (2.0 * beta)).pow(2).mean().MoveToOuterDisposeScope();
    }

    /// <summary>A mask as the dtype of <paramref name="like"/> (bool masks are accepted everywhere).</summary>
    internal static Tensor FloatMask(Tensor mask, Tensor like) => mask.dtype == like.dtype ? mask.alias() : mask.to(like.dtype);
}
