using System.Globalization;
using System.Text;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Writes metric snapshots in the Prometheus text exposition format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): per metric a HELP and a TYPE line,
/// then its samples; histograms as cumulative <c>_bucket{le}</c> (ending with <c>le="+Inf"</c>),
/// <c>_sum</c> and <c>_count</c>. Label values escape <c>\</c>, <c>"</c> and newline; HELP escapes
/// <c>\</c> and newline. Metrics are written in name order and series in label order, so two scrapes
/// of the same state are byte-identical.
/// </summary>
public static class PrometheusTextWriter
{
    /// <summary>The Content-Type of a 0.0.4 scrape response.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(IEnumerable<MetricFamilySnapshot> families)
    {
        var builder = new StringBuilder(4096);
        Write(builder, families);
        return builder.ToString();
    }

    public static void Write(StringBuilder output, IEnumerable<MetricFamilySnapshot> families)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(families);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var family in families.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            if (family.Series.Count == 0) continue;
            if (!seen.Add(family.Name)) throw new InvalidOperationException($"metric {family.Name} appears twice; merge its series before writing");
            output.Append("# HELP ").Append(family.Name).Append(' ').Append(EscapeHelp(family.Help)).Append('\n');
            output.Append("# TYPE ").Append(family.Name).Append(' ').Append(TypeName(family.Kind)).Append('\n');
            foreach (var series in family.Series)
            {
                if (family.Kind == MetricKind.Histogram)
                {
                    WriteHistogram(output, family.Name, series);
                    continue;
                }
                WriteSample(output, family.Name, series.Labels, null, series.Value);
            }
        }
    }

    private static void WriteHistogram(StringBuilder output, string name, MetricSeriesSnapshot series)
    {
        var histogram = series.Histogram ?? throw new InvalidOperationException($"histogram {name} has a series without buckets");
        for (var i = 0; i < histogram.UpperBounds.Count; i++)
            WriteSample(output, name + "_bucket", series.Labels, FormatValue(histogram.UpperBounds[i]), histogram.CumulativeCounts[i]);
        WriteSample(output, name + "_bucket", series.Labels, "+Inf", histogram.Count);
        WriteSample(output, name + "_sum", series.Labels, null, histogram.Sum);
        WriteSample(output, name + "_count", series.Labels, null, histogram.Count);
    }

    private static void WriteSample(StringBuilder output, string name, IReadOnlyList<KeyValuePair<string, string>> labels, string? le, double value)
    {
        output.Append(name);
        if (labels.Count > 0 || le is not null)
        {
            output.Append('{');
            var first = true;
            foreach (var (key, labelValue) in labels)
            {
                if (!first) output.Append(',');
                first = false;
                output.Append(key).Append("=\"");
                AppendEscapedLabelValue(output, labelValue);
                output.Append('"');
            }
            if (le is not null)
            {
                if (!first) output.Append(',');
                output.Append("le=\"").Append(le).Append('"');
            }
            output.Append('}');
        }
        output.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    /// <summary>Label value escaping of the text format: backslash, double quote and line feed.</summary>
    public static string EscapeLabelValue(string value)
    {
        var builder = new StringBuilder(value.Length + 8);
        AppendEscapedLabelValue(builder, value);
        return builder.ToString();
    }

    private static void AppendEscapedLabelValue(StringBuilder output, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': output.Append(@"\\"); break;
                case '"': output.Append("\\\""); break;
                case '\n': output.Append(@"\n"); break;
                default: output.Append(c); break;
            }
        }
    }

    private static string EscapeHelp(string help) => help.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("\n", @"\n", StringComparison.Ordinal);

    /// <summary>Go-compatible float text: shortest round-trip digits, "+Inf", "-Inf", "NaN".</summary>
    public static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string TypeName(MetricKind kind) => kind switch
    {
        MetricKind.Counter => "counter",
        MetricKind.Gauge => "gauge",
        MetricKind.Histogram => "histogram",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}
