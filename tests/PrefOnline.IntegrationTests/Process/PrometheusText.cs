using System.Globalization;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>Just enough of the Prometheus text format (0.0.4) to read sample values in tests.</summary>
public static class PrometheusText
{
    /// <summary>The sum over the series of <paramref name="name"/> carrying every label in <paramref name="labels"/>; null when there is none.</summary>
    public static double? Sum(string text, string name, params (string Key, string Value)[] labels)
    {
        double? sum = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var nameEnd = line.IndexOfAny(['{', ' ']);
            if (nameEnd < 0 || line[..nameEnd] != name) continue;
            var labelText = line[nameEnd] == '{' ? line[(nameEnd + 1)..line.LastIndexOf('}')] : "";
            if (!labels.All(l => labelText.Contains($"{l.Key}=\"{l.Value}\"", StringComparison.Ordinal))) continue;
            var valueText = line[(line.LastIndexOf('}') is var close && close > nameEnd ? close + 1 : nameEnd)..].Trim().Split(' ')[0];
            sum = (sum ?? 0) + double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        return sum;
    }
}
