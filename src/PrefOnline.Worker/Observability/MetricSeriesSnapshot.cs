namespace PrefOnline.Worker.Observability;

/// <summary>One label set of a metric at scrape time. Labels are sorted by name; histograms carry <see cref="Histogram"/>.</summary>
public sealed record MetricSeriesSnapshot(IReadOnlyList<KeyValuePair<string, string>> Labels, double Value, HistogramSnapshot? Histogram = null);
