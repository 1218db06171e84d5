namespace PrefOnline.Worker.Observability;

/// <summary>
/// One metric as operators see it: its stable Prometheus name, type, HELP text, the only label names
/// it may carry (the allow-list that keeps prompt and completion text out of labels), and for
/// histograms the bucket upper bounds.
/// </summary>
public sealed record MetricDefinition(
    string Name,
    MetricKind Kind,
    string Help,
    IReadOnlyList<string> LabelNames,
    IReadOnlyList<double>? Buckets = null)
{
    /// <summary>Bounded label values each label takes (documentation and pre-initialisation); empty when open (e.g. topic names).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> KnownLabelValues { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
}
