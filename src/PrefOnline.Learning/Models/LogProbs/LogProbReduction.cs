namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>How per-token log-probabilities of a completion become one number per sequence. Always
/// explicit: DPO uses the sum, IPO-style and length-normalised objectives the per-token mean, and a
/// silent default is how two copies of one loss drift apart.</summary>
public enum LogProbReduction
{
    /// <summary>Σₜ log π(yₜ | x, y&lt;ₜ): the log-probability of the whole completion.</summary>
    Sum,

    /// <summary>The sum divided by the number of completion tokens (0 for an empty completion).</summary>
    Mean,
}
