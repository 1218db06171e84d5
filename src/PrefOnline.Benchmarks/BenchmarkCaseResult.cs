namespace PrefOnline.Benchmarks;

/// <summary>
/// One row of the report. <see cref="Ratio"/> is ours ÷ reference throughput (above 1: we are faster),
/// the median over rounds of the ratio within each interleaved pair of rounds, so a load spike on the
/// shared machine hits both sides of a pair rather than skewing one side's median.
/// </summary>
public sealed record BenchmarkCaseResult(
    string Benchmark,
    string Case,
    string Unit,
    double WorkPerRound,
    ThroughputStatistics Ours,
    ThroughputStatistics? Reference,
    double? TargetThroughput)
{
    /// <summary>The case's derived figure (<see cref="BenchmarkCase.Note"/>), if it has one.</summary>
    public string? Note { get; init; }

    public double? Ratio => Reference is null
        ? null
        : ThroughputStatistics.MedianOf(Ours.Seconds.Zip(Reference.Seconds, (ours, theirs) => theirs / ours).ToArray());

    /// <summary>Best ÷ best: what each side can do at its quietest moment.</summary>
    public double? BestRatio => Reference is null ? null : Ours.Best / Reference.Best;

    /// <summary>Whether our best round reaches <see cref="TargetThroughput"/> (null when the case sets none).</summary>
    public bool? MeetsTarget => TargetThroughput is { } target ? Ours.Best >= target : null;
}
