using System.Globalization;
using System.Text.RegularExpressions;

namespace PrefOnline.Cli;

/// <summary>Durations on the command line: <c>90s</c>, <c>5m</c>, <c>1h30m</c>, <c>500ms</c>, <c>00:05:00</c>, or <c>0</c> (no limit).</summary>
public static partial class DurationText
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (text == "0") return true;
        if (text.Contains(':') && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration)) return duration >= TimeSpan.Zero;
        var match = UnitPattern().Match(text);
        if (!match.Success) return false;
        double total = 0;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var piece = PartPattern().Match(part.Value);
            var value = double.Parse(piece.Groups["n"].Value, CultureInfo.InvariantCulture);
            total += piece.Groups["u"].Value switch
            {
                "ms" => value / 1000,
                "s" => value,
                "m" => value * 60,
                "h" => value * 3600,
                "d" => value * 86400,
                _ => double.NaN,
            };
        }
        if (!double.IsFinite(total) || total > TimeSpan.MaxValue.TotalSeconds / 2) return false;
        duration = TimeSpan.FromSeconds(total);
        return true;
    }

    [GeneratedRegex(@"^(?<part>\d+(\.\d+)?(ms|s|m|h|d))+$")]
    private static partial Regex UnitPattern();

    [GeneratedRegex(@"^(?<n>\d+(\.\d+)?)(?<u>ms|s|m|h|d)$")]
    private static partial Regex PartPattern();
}
