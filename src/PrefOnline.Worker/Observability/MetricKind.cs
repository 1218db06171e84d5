namespace PrefOnline.Worker.Observability;

/// <summary>The Prometheus metric type an instrument is exposed as.</summary>
public enum MetricKind
{
    /// <summary>Monotonic total; exposed with the <c>_total</c> suffix.</summary>
    Counter,
    /// <summary>A value that goes up and down (last recorded or observed value).</summary>
    Gauge,
    /// <summary>Bucketed distribution: <c>_bucket{le}</c>, <c>_sum</c>, <c>_count</c>.</summary>
    Histogram,
}
