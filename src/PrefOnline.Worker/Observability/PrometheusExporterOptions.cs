using System.Diagnostics.Metrics;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// What the <see cref="PrometheusExporter"/> listens to and how it guards label cardinality.
///
/// The label policy (why prompt or completion text can never reach a label):
/// <list type="number">
/// <item>Only allow-listed label names pass: a catalog metric's own <see cref="MetricDefinition.LabelNames"/>,
///   otherwise <see cref="DefaultAllowedLabelNames"/>. Any other tag is dropped (counted).</item>
/// <item>A value longer than <see cref="MaxLabelValueLength"/> or containing a control character
///   (prompts and completions carry newlines) is replaced by <c>_rejected</c> (counted).</item>
/// <item>At most <see cref="MaxSeriesPerMetric"/> label sets per metric; further new ones fold into
///   one series whose values are all <c>_overflow</c> (counted).</item>
/// </list>
/// Counts appear as <c>prefonline_metrics_label_rejections_total{metric,reason}</c>.
/// </summary>
public sealed record PrometheusExporterOptions
{
    /// <summary>Meters with this name are exported, whichever assembly created them.</summary>
    public string MeterName { get; init; } = MetricCatalog.MeterName;

    /// <summary>Optional further filter, e.g. on <see cref="Meter.Scope"/> to isolate one host's meters in tests.</summary>
    public Func<Meter, bool>? MeterFilter { get; init; }

    public int MaxLabelValueLength { get; init; } = 64;

    public int MaxSeriesPerMetric { get; init; } = 1000;

    /// <summary>Label names allowed on instruments the catalog does not know (low-cardinality words only).</summary>
    public IReadOnlyList<string> DefaultAllowedLabelNames { get; init; } =
        ["topic", "partition", "result", "reason", "source", "role", "check", "direction", "kind", "status", "stage"];
}
