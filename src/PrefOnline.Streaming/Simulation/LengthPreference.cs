namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Users who prefer shorter (or longer) completions: U = ∓ length / <see cref="CharsPerNat"/>, length in
/// UTF-16 characters. "Shorter" is the default hidden preference: it is the paper's "min length" task
/// (Tajwar et al. 2024, §4): the reward peaks where a reference policy trained on ordinary text puts
/// little mass (very short answers), so on-policy sampling matters, and a tiny byte-level model learns
/// it within minutes because a single decision (emit the end of the completion earlier) moves it.
/// Requires the generator to end completions (a stop token / max length) rather than always emitting a
/// fixed number of bytes; with fixed-length generation use <see cref="PatternPreference"/>.
/// </summary>
public sealed class LengthPreference : IHiddenPreference
{
    public LengthPreference(bool preferShorter = true, double charsPerNat = 8)
    {
        if (!double.IsFinite(charsPerNat) || charsPerNat <= 0) throw new ArgumentOutOfRangeException(nameof(charsPerNat), charsPerNat, "must be a positive number");
        PreferShorter = preferShorter;
        CharsPerNat = charsPerNat;
    }

    public bool PreferShorter { get; }

    /// <summary>Characters of length difference worth one nat of utility (default 8: a 16-character gap is preferred ~88% of the time at temperature 1).</summary>
    public double CharsPerNat { get; }

    public string Description => $"{(PreferShorter ? "shorter" : "longer")} ({CharsPerNat:0.##} chars/nat)";

    public double Utility(string prompt, string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var utility = completion.Length / CharsPerNat;
        return PreferShorter ? -utility : utility;
    }
}
