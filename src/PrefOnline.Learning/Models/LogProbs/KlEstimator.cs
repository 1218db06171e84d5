namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>Per-token estimates of KL(π ‖ π_ref) on tokens sampled from π (Schulman, "Approximating
/// KL Divergence", 2020).</summary>
public enum KlEstimator
{
    /// <summary>k1 = log π(y) − log π_ref(y): unbiased, can be negative per token.</summary>
    LogRatio,

    /// <summary>k3 = (r − 1) − log r with r = π_ref(y)/π(y): unbiased, never negative, lower variance.</summary>
    LowVariance,

    /// <summary>Σᵥ π(v) (log π(v) − log π_ref(v)) over the whole vocabulary at each position: exact per
    /// position; needs the log-distributions (keepDistributions) of both models.</summary>
    FullVocabulary,
}
