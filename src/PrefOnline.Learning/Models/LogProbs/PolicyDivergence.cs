using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Objectives;

namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>
/// KL between the policy and the reference, and the policy's entropy, on the completion tokens of one
/// <see cref="SequenceBatch"/>. Every result is per token (B, Tc), zero under padding; reduce it
/// with <see cref="SequenceLogProbs.Reduce"/> or <see cref="MeanOverTokens"/>. The gradient flows
/// through the policy's tensors when they carry one (the reference's never do).
/// </summary>
public static class PolicyDivergence
{
    /// <summary>Per-token KL(π ‖ π_ref) estimate (B, Tc) on the batch's completion tokens.</summary>
    public static Tensor TokenKl(SequenceLogProbs policy, SequenceLogProbs reference, KlEstimator estimator)
    {
        CheckPair(policy, reference);
        using var scope = NewDisposeScope();
        var mask = policy.Mask;
        Tensor kl;
        switch (estimator)
        {
            case KlEstimator.LogRatio or KlEstimator.Squared or KlEstimator.LowVariance:
                kl = KlEstimators.OfLogRatio(estimator, policy.TokenLogProbs - reference.TokenLogProbs);
                break;
            case KlEstimator.FullVocabulary:
                var (p, q) = (Distributions(policy, "policy"), Distributions(reference, "reference"));
                kl = (p.exp() * (p - q)).sum(-1);                                 // (B, Tc)
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(estimator), estimator, "known estimators: LogRatio, Squared, LowVariance, FullVocabulary");
        }
        return (kl * mask).MoveToOuterDisposeScope();
    }

    /// <summary>Entropy H(π(· | x, y&lt;ⱼ)) of the policy's next-token distribution at each completion
    /// position (B, Tc), in nats; needs the log-distributions.</summary>
    public static Tensor Entropy(SequenceLogProbs policy)
    {
        using var scope = NewDisposeScope();
        var logp = Distributions(policy, "policy");
        var entropy = -(logp.exp() * logp).sum(-1);                               // (B, Tc)
        return (entropy * policy.Mask).MoveToOuterDisposeScope();
    }

    /// <summary>The mean of a per-token quantity over every real token of the batch (a scalar), as
    /// metrics report it: long sequences weigh more than short ones.</summary>
    public static Tensor MeanOverTokens(Tensor perToken, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return ((perToken * mask).sum() / mask.sum().clamp(min: 1)).MoveToOuterDisposeScope();
    }

    private static Tensor Distributions(SequenceLogProbs logProbs, string which) =>
        logProbs.LogDistributions ?? throw new ArgumentException(
            $"the {which} log-probs were computed without keepDistributions: the full-vocabulary KL and the entropy need them");

    private static void CheckPair(SequenceLogProbs policy, SequenceLogProbs reference)
    {
        if (!policy.TokenLogProbs.shape.SequenceEqual(reference.TokenLogProbs.shape))
            throw new ArgumentException(
                $"policy and reference log-probs differ in shape ([{string.Join(", ", policy.TokenLogProbs.shape)}] vs " +
                $"[{string.Join(", ", reference.TokenLogProbs.shape)}]): compute both on the same SequenceBatch");
    }
}
