namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Users whose taste is a completion's length, in UTF-16 characters:
/// <list type="bullet">
/// <item><c>length:N</c> (the default, <c>length:4</c>): answers of exactly N characters are best,
///   U = −|length − N| / <see cref="CharsPerNat"/>. The demo's starting policy answers with ~12 letters
///   (±4), so its users' optimum is a short but visible answer ("a:" → "bcde") that the reference gives
///   ~1.5 % of its mass — the paper's setting where on-policy sampling matters (Tajwar et al. 2024, §4).</item>
/// <item><c>shorter</c> / <c>longer</c>: U = ∓ length / <see cref="CharsPerNat"/>, the paper's "min length"
///   task; its optimum for a model that may stop at once is the empty answer.</item>
/// </list>
/// Requires the generator to end completions (a stop token / max length) rather than always emitting a
/// fixed number of bytes; with fixed-length generation use <see cref="PatternPreference"/>.
/// </summary>
public sealed class LengthPreference : IHiddenPreference
{
    /// <summary>Characters per nat of <c>shorter</c>/<c>longer</c>: a 16-character gap is preferred ~88 % of the time at temperature 1.</summary>
    public const double DefaultCharsPerNat = 8;

    /// <summary>Characters per nat of <c>length:N</c>: a miss by 4 characters costs one nat.</summary>
    public const double DefaultTargetCharsPerNat = 4;

    public LengthPreference(bool preferShorter = true, double charsPerNat = DefaultCharsPerNat)
    {
        if (!double.IsFinite(charsPerNat) || charsPerNat <= 0) throw new ArgumentOutOfRangeException(nameof(charsPerNat), charsPerNat, "must be a positive number");
        PreferShorter = preferShorter;
        CharsPerNat = charsPerNat;
    }

    private LengthPreference(int targetLength, double charsPerNat)
        : this(preferShorter: true, charsPerNat)
    {
        if (targetLength < 0) throw new ArgumentOutOfRangeException(nameof(targetLength), targetLength, "must be 0 or more characters");
        TargetLength = targetLength;
    }

    /// <summary>Users who prefer answers of <paramref name="targetLength"/> characters, the closer the better.</summary>
    public static LengthPreference Target(int targetLength, double charsPerNat = DefaultTargetCharsPerNat) => new(targetLength, charsPerNat);

    /// <summary>The preferred length (<c>length:N</c>), or null for shorter/longer.</summary>
    public int? TargetLength { get; }

    /// <summary>Without a target: true for shorter, false for longer.</summary>
    public bool PreferShorter { get; }

    /// <summary>Characters of length difference worth one nat of utility.</summary>
    public double CharsPerNat { get; }

    public string Description => TargetLength is { } target
        ? $"length {target} ({CharsPerNat:0.##} chars/nat)"
        : $"{(PreferShorter ? "shorter" : "longer")} ({CharsPerNat:0.##} chars/nat)";

    public double Utility(string prompt, string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        if (TargetLength is { } target) return -Math.Abs(completion.Length - target) / CharsPerNat;
        var utility = completion.Length / CharsPerNat;
        return PreferShorter ? -utility : utility;
    }
}
