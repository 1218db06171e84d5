using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// How KL(π‖π_ref) is estimated on a batch's completion tokens, with d = log π(y_t) − log π_ref(y_t)
/// (Schulman, "Approximating KL divergence", 2020). One enum for both uses: the KL penalty added to a loss
/// (<see cref="ObjectiveOptions.KlEstimator"/>, differentiated, sampled estimators only) and the reported KL
/// (<c>Learner:KlMetric</c>, the guardrail's budget and the adaptive controller). The sampled estimators
/// differ in what their gradient is when the penalty is differentiated as a loss term:
/// </summary>
public enum KlEstimator
{
    /// <summary>k1 = d. Unbiased for the value of KL(π‖π_ref) but can be negative per token, and its gradient
    /// is ∇log π(y), whose expectation under y ~ π is zero: as a loss it does not pull π towards π_ref on fresh
    /// samples. The paper's code uses it (added to PPO/REINFORCE losses); kept for reproducing that.</summary>
    LogRatio,

    /// <summary>k2 = ½·d². Gradient d·∇log π(y), whose expectation under y ~ π is exactly ∇KL(π‖π_ref): the
    /// right choice for a reverse-KL leash on on-policy samples. The penalty's default.</summary>
    Squared,

    /// <summary>k3 = exp(−d) − 1 + d = (r − 1) − log r with r = π_ref(y)/π(y): unbiased, never negative, low
    /// variance (GRPO's choice). As a loss its gradient's expectation under y ~ π is ∇KL(π_ref‖π), the forward
    /// KL: still a leash, but mass-covering.</summary>
    LowVariance,

    /// <summary>Σᵥ π(v) (log π(v) − log π_ref(v)) over the whole vocabulary at each position: exact per position
    /// whoever sampled the tokens; needs the log-distributions of both models. A metric only, not a penalty.</summary>
    FullVocabulary,
}

/// <summary>The sampled estimators' per-token formula, shared by the penalty and the metric.</summary>
public static class KlEstimators
{
    /// <summary>k(d) elementwise for a sampled estimator; <paramref name="logRatio"/> is d = log π − log π_ref.</summary>
    public static Tensor OfLogRatio(KlEstimator estimator, Tensor logRatio) => estimator switch
    {
        KlEstimator.LogRatio => logRatio.alias(),
        KlEstimator.Squared => logRatio.pow(2) * 0.5,
        KlEstimator.LowVariance => logRatio.neg().exp() - 1.0 + logRatio,
        _ => throw new ArgumentOutOfRangeException(nameof(estimator), estimator, "a sampled estimator (LogRatio, Squared, LowVariance) is needed here; FullVocabulary needs the distributions"),
    };
}
