namespace PrefOnline.Learning.Experiments.Length;

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
