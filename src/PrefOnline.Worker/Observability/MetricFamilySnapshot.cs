namespace PrefOnline.Worker.Observability;

/// <summary>One metric (all its series) at scrape time, as the text writer needs it. <see cref="Name"/> is the exposition name (counters end in <c>_total</c>).</summary>
public sealed record MetricFamilySnapshot(string Name, MetricKind Kind, string Help, IReadOnlyList<MetricSeriesSnapshot> Series);
