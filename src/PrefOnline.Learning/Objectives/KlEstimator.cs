namespace PrefOnline.Learning.Objectives;

/// <summary>
/// How the per-token KL-to-reference penalty is estimated from sampled tokens, with
/// d = log π(y_t) − log π_ref(y_t) (Schulman, "Approximating KL divergence", 2020). They differ in
/// what their gradient is when the penalty is differentiated directly as a loss term, which is how
/// <see cref="KlPenalty"/> uses it:
/// </summary>
public enum KlEstimator
{
    /// <summary>k1 = d. Unbiased for the value of KL(π‖π_ref), but its gradient is ∇log π(y), whose
    /// expectation under y ~ π is zero: as a loss it does not pull π towards π_ref on fresh samples.
    /// The paper's code uses it (added to PPO/REINFORCE losses); kept for reproducing that.</summary>
    K1,

    /// <summary>k2 = ½·d². Gradient d·∇log π(y), whose expectation under y ~ π is exactly
    /// ∇KL(π‖π_ref): the right choice for a reverse-KL leash on on-policy samples. The default.</summary>
    K2,

    /// <summary>k3 = exp(−d) − 1 + d (≥ 0, low variance; GRPO's choice). Its gradient's expectation
    /// under y ~ π is ∇KL(π_ref‖π), the forward KL: still a leash, but mass-covering.</summary>
    K3,
}
