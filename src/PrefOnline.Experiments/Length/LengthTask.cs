namespace PrefOnline.Experiments.Length;

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

/// <summary>The spellings of <see cref="LengthTask"/> on the command line and in output files.</summary>
public static class LengthTaskNames
{
    public const string Min = "min";
    public const string Mode = "mode";
    public const string Skew = "skew";

    public static IReadOnlyList<string> All { get; } = [Min, Mode, Skew];

    public static string Name(LengthTask task) => task switch
    {
        LengthTask.Min => Min,
        LengthTask.Mode => Mode,
        LengthTask.Skew => Skew,
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, "unknown task"),
    };

    public static LengthTask Parse(string name) => name switch
    {
        Min => LengthTask.Min,
        Mode => LengthTask.Mode,
        Skew => LengthTask.Skew,
        _ => throw new ArgumentException($"unknown task '{name}'; valid tasks: {string.Join(", ", All)}", nameof(name)),
    };
}
