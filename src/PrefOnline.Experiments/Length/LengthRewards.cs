namespace PrefOnline.Experiments.Length;

/// <summary>The tasks' rewards, in [0, 1], of a completion's valid length (null = invalid: wrong letters,
/// empty, too long or never stopped, which earns 0 in every task).</summary>
public static class LengthRewards
{
    /// <summary>
    /// min / skew: (Lmax − L)/(Lmax − 1), 1 at the shortest valid length (1 letter).
    /// mode: 1 − |L − mode|/(Lmax − 1), 1 at the corpus's most common length.
    /// </summary>
    public static double Reward(LengthTask task, int? validLength, LengthCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        if (validLength is not { } l) return 0;
        var span = corpus.MaxLength - 1.0;
        return task switch
        {
            LengthTask.Min or LengthTask.Skew => (corpus.MaxLength - l) / span,
            LengthTask.Mode => Math.Max(0, 1 - Math.Abs(l - corpus.ModeLength) / span),
            _ => throw new ArgumentOutOfRangeException(nameof(task), task, "unknown task"),
        };
    }

    /// <summary>The skew task's offline data keeps a reference sample of length L with probability
    /// σ((L − mode)/s): half the samples at the mode, few short ones (far from the min-length peak).</summary>
    public static double SkewAcceptance(int length, LengthCorpus corpus, double sharpness) =>
        1.0 / (1.0 + Math.Exp(-(length - corpus.ModeLength) / sharpness));
}
