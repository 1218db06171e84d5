namespace PrefOnline.Worker.Observability;

/// <summary>A histogram series at scrape time.</summary>
/// <param name="UpperBounds">Finite bucket upper bounds, ascending (the +Inf bucket is implicit).</param>
/// <param name="CumulativeCounts">Observations ≤ each bound, same length as <paramref name="UpperBounds"/>.</param>
/// <param name="Sum">Sum of all observations.</param>
/// <param name="Count">All observations (the +Inf bucket).</param>
public sealed record HistogramSnapshot(IReadOnlyList<double> UpperBounds, IReadOnlyList<long> CumulativeCounts, double Sum, long Count);
