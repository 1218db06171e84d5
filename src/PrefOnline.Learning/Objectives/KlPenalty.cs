using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// The per-token KL-to-reference penalty, usable with any objective: Σ over a sequence's completion
/// tokens of k(d_t), d_t = log π(y_t) − log π_ref(y_t), averaged over sequences. Summing per sequence
/// makes it an estimate of the KL between the sequence distributions (what a target-KL controller
/// compares against) and keeps it on the same scale as the summed sequence log-probs every loss uses.
/// </summary>
public static class KlPenalty
{
    /// <summary>(B,) Σ_t mask·k(d_t) with gradient through the policy only.</summary>
    /// <param name="policyTokens">(B, T) log π with history.</param>
    /// <param name="referenceTokens">(B, T) log π_ref (detached here).</param>
    /// <param name="mask">(B, T) 1 on completion tokens; float or bool.</param>
    public static Tensor PerSequence(Tensor policyTokens, Tensor referenceTokens, Tensor mask, KlEstimator estimator)
    {
        using var scope = NewDisposeScope();
        var d = policyTokens - referenceTokens.detach();                              // (B, T)
        var k = KlEstimators.OfLogRatio(estimator, d);
        return (k * Losses.FloatMask(mask, k)).sum(1).MoveToOuterDisposeScope();
    }
}
