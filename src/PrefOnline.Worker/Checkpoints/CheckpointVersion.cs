using System.Globalization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Checkpoint version numbers and their directory names: version 7 lives in <c>v000007/</c>.
/// Versions start at 1 and only grow; a rollback never reuses a number (the next write is max + 1).
/// </summary>
public static class CheckpointVersion
{
    /// <summary>The first version a new store writes.</summary>
    public const long First = 1;

    /// <summary>Zero padding of the directory name; more digits appear only past version 999,999.</summary>
    private const int PaddedDigits = 6;

    /// <summary>18 digits keeps every parsed number inside <see cref="long"/>.</summary>
    private const int MaxDigits = 18;

    /// <summary><c>7</c> → <c>"v000007"</c>.</summary>
    public static string DirectoryName(long version)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, First);
        return "v" + version.ToString("D" + PaddedDigits, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Parses a canonical directory name (<c>v000007</c>) and nothing else: <c>v7</c>, <c>v0000007</c>
    /// or <c>v000007.bak</c> are not versions, so stray directories an operator made are never picked up.
    /// </summary>
    public static bool TryParseDirectoryName(string name, out long version)
    {
        version = 0;
        if (name.Length < 1 + PaddedDigits || name.Length > 1 + MaxDigits || name[0] != 'v') return false;
        for (var i = 1; i < name.Length; i++)
            if (name[i] is < '0' or > '9') return false;
        if (!long.TryParse(name.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed < First) return false;
        if (DirectoryName(parsed) != name) return false;
        version = parsed;
        return true;
    }

    /// <summary>Parses what a person types: <c>7</c>, <c>v7</c> or <c>v000007</c>.</summary>
    public static bool TryParse(string? text, out long version)
    {
        version = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var digits = text.Trim();
        if (digits[0] is 'v' or 'V') digits = digits[1..];
        if (digits.Length is 0 or > MaxDigits) return false;
        foreach (var c in digits)
            if (c is < '0' or > '9') return false;
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed < First) return false;
        version = parsed;
        return true;
    }
}
