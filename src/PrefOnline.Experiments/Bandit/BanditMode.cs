namespace PrefOnline.Experiments.Bandit;

/// <summary>Where the bandit's training data comes from.</summary>
public enum BanditMode
{
    /// <summary>One batch sampled from the reference policy, reused for all T steps.</summary>
    Offline,

    /// <summary>A fresh batch from the current policy every epoch (the first from the reference, as in
    /// the official code), T steps on each.</summary>
    OnPolicy,
}

/// <summary>The spellings of <see cref="BanditMode"/> on the command line and in output files.</summary>
public static class BanditModeNames
{
    public const string Offline = "offline";
    public const string OnPolicy = "on-policy";

    public static IReadOnlyList<string> All { get; } = [Offline, OnPolicy];

    public static string Name(BanditMode mode) => mode switch
    {
        BanditMode.Offline => Offline,
        BanditMode.OnPolicy => OnPolicy,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown mode"),
    };

    public static BanditMode Parse(string name) => name switch
    {
        Offline => BanditMode.Offline,
        OnPolicy or "online" or "on_policy" => BanditMode.OnPolicy,
        _ => throw new ArgumentException($"unknown mode '{name}'; valid modes: {string.Join(", ", All)}", nameof(name)),
    };
}
