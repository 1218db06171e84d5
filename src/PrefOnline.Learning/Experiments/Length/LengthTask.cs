namespace PrefOnline.Learning.Experiments.Length;

/// <summary>The length tasks (Tajwar et al. 2024, §5, synthetic LLM tasks), on a reference fitted to
/// the <see cref="LengthCorpus"/>.</summary>
public enum LengthTask
{
    /// <summary>Shorter is better (the best length, 1, is one the reference almost never produces: the
    /// reward peak lies in a low-likelihood region).</summary>
    Min,

    /// <summary>Closest to the reference's most common length is best (the peak where the reference has most mass).</summary>
    Mode,

    /// <summary>The min-length reward, but the offline data comes from a distribution skewed towards long
    /// completions (away from the peak); online sampling is unaffected.</summary>
    Skew,
}
