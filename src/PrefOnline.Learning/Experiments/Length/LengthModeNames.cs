namespace PrefOnline.Learning.Experiments.Length;

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
