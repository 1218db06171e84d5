using System.Text.Json;

namespace PrefOnline.Experiments.Reporting;

/// <summary>The small JSON-writing helpers every experiment's results.json uses.</summary>
public static class ResultsJson
{
    public static void WriteNumbers(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    public static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>A number, or null when it is NaN/∞ (JSON has no NaN).</summary>
    public static void WriteFinite(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }
}
