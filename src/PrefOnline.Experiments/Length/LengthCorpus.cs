namespace PrefOnline.Experiments.Length;

/// <summary>
/// The synthetic reference corpus a tiny byte-level GPT-2 fits in seconds. A prompt is one of the first
/// <see cref="PromptLetters"/> letters and a colon ("c:"); its completion continues the alphabet from
/// that letter, cyclically ("cdefg…"), for L letters, then ends (end-of-sequence). The content is
/// fixed by the prompt, so the only real choice is when to stop: the length L, drawn from a discretised
/// Gaussian (mean <see cref="MeanLength"/>, standard deviation <see cref="LengthStd"/>) truncated to
/// [1, <see cref="MaxLength"/>]. A completion is <em>valid</em> when it is exactly such a continuation of
/// 1..MaxLength letters followed by the end-of-sequence token; the tasks reward only valid completions.
/// </summary>
public sealed class LengthCorpus
{
    public LengthCorpus(int maxLength, double meanLength, double lengthStd, int promptLetters)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "must be at least 2");
        if (!(meanLength >= 1 && meanLength <= maxLength)) throw new ArgumentOutOfRangeException(nameof(meanLength), meanLength, $"must be in [1, {maxLength}]");
        if (!(lengthStd > 0) || double.IsInfinity(lengthStd)) throw new ArgumentOutOfRangeException(nameof(lengthStd), lengthStd, "must be a positive finite number");
        if (promptLetters < 1 || promptLetters > 26) throw new ArgumentOutOfRangeException(nameof(promptLetters), promptLetters, "must be in [1, 26]");
        MaxLength = maxLength;
        MeanLength = meanLength;
        LengthStd = lengthStd;
        PromptLetters = promptLetters;
        var weights = new double[maxLength + 1];
        for (var l = 1; l <= maxLength; l++) weights[l] = Math.Exp(-0.5 * Math.Pow((l - meanLength) / lengthStd, 2));
        var total = weights.Sum();
        LengthProbabilities = weights.Select(w => w / total).ToArray();
        ModeLength = Enumerable.Range(1, maxLength).MaxBy(l => LengthProbabilities[l]);
        Prompts = Enumerable.Range(0, promptLetters).Select(i => $"{(char)('a' + i)}:").ToArray();
    }

    public int MaxLength { get; }

    public double MeanLength { get; }

    public double LengthStd { get; }

    public int PromptLetters { get; }

    /// <summary>P(L = l) for l = 0..MaxLength (P(0) = 0).</summary>
    public IReadOnlyList<double> LengthProbabilities { get; }

    /// <summary>The most common length.</summary>
    public int ModeLength { get; }

    public IReadOnlyList<string> Prompts { get; }

    /// <summary>E[L] of the corpus.</summary>
    public double ExpectedLength => Enumerable.Range(0, MaxLength + 1).Sum(l => l * LengthProbabilities[l]);

    /// <summary>The valid completion text of <paramref name="length"/> letters for <paramref name="prompt"/>.</summary>
    public static string Completion(string prompt, int length)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0 || prompt[0] < 'a' || prompt[0] > 'z') throw new ArgumentException($"prompt '{prompt}' does not start with a lowercase letter", nameof(prompt));
        var start = prompt[0] - 'a';
        return new string(Enumerable.Range(0, length).Select(j => (char)('a' + (start + j) % 26)).ToArray());
    }

    /// <summary>L when <paramref name="completionTokens"/> is a valid completion of <paramref name="prompt"/>
    /// (the byte tokenizer's ids of its letters, then <paramref name="endOfSequence"/>), else null.</summary>
    public int? ValidLength(string prompt, IReadOnlyList<int> completionTokens, int endOfSequence)
    {
        var letters = completionTokens.Count - 1;
        if (letters < 1 || letters > MaxLength || completionTokens[^1] != endOfSequence) return null;
        var start = prompt[0] - 'a';
        for (var j = 0; j < letters; j++)
            if (completionTokens[j] != 'a' + (start + j) % 26) return null;
        return letters;
    }

    /// <summary>A length drawn from the corpus distribution, given a uniform number in [0, 1).</summary>
    public int LengthAt(double uniform)
    {
        var cumulative = 0.0;
        for (var l = 1; l <= MaxLength; l++)
        {
            cumulative += LengthProbabilities[l];
            if (uniform < cumulative) return l;
        }
        return MaxLength;
    }
}
