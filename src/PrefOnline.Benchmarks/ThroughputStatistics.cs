namespace PrefOnline.Benchmarks;

/// <summary>The rounds of one side of a case: seconds per round as measured, and throughput
/// (work / seconds) at its best and median.</summary>
public sealed record ThroughputStatistics(IReadOnlyList<double> Seconds, double Best, double Median)
{
    public static ThroughputStatistics From(IReadOnlyList<double> seconds, double workPerRound)
    {
        if (seconds.Count == 0) throw new ArgumentException("no rounds were measured", nameof(seconds));
        foreach (var s in seconds)
            if (!(s > 0) || double.IsInfinity(s))
                throw new ArgumentException($"a round took {s} s; a round must take a positive, finite time (is the round empty?)", nameof(seconds));
        var throughput = seconds.Select(s => workPerRound / s).Order().ToArray();
        return new ThroughputStatistics(seconds.ToArray(), throughput[^1], MedianOf(throughput));
    }

    /// <summary>The median of <paramref name="values"/> (mean of the middle two for an even count).</summary>
    public static double MedianOf(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("median of nothing", nameof(values));
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
