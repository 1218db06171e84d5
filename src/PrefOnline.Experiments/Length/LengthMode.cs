namespace PrefOnline.Experiments.Length;

/// <summary>Where a length run's training samples come from.</summary>
public enum LengthMode
{
    /// <summary>A fixed dataset sampled once from the reference (for <see cref="LengthTask.Skew"/>, from the
    /// skewed distribution), as large as the online run's total sample budget: each sample is trained on in
    /// one update, like the online ones; only where the samples come from differs.</summary>
    Offline,

    /// <summary>Every update samples fresh completions from the current policy (on-policy).</summary>
    Online,
}

/// <summary>The spellings of <see cref="LengthMode"/> on the command line and in output files.</summary>
public static class LengthModeNames
{
    public const string Offline = "offline";
    public const string Online = "online";

    public static IReadOnlyList<string> All { get; } = [Offline, Online];

    public static string Name(LengthMode mode) => mode switch
    {
        LengthMode.Offline => Offline,
        LengthMode.Online => Online,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown mode"),
    };

    public static LengthMode Parse(string name) => name switch
    {
        Offline => LengthMode.Offline,
        Online or "on-policy" or "on_policy" => LengthMode.Online,
        _ => throw new ArgumentException($"unknown mode '{name}'; valid modes: {string.Join(", ", All)}", nameof(name)),
    };
}
