using System.Globalization;

namespace PrefOnline.Benchmarks;

/// <summary>
/// <c>prefonline bench freshness</c>: label produced → the update that learnt from it applied (its policy event),
/// measured on the whole worker running in this process against librdkafka's mock cluster with simulated
/// users (<see cref="FreshnessMeasurement"/>). The row's throughput is labels/s end to end (first label of a
/// round produced → last one applied); the note under the table gives the latency p50/p99 over every measured
/// round against the goal p99 ≤ <c>Learner:UpdateInterval</c> + 2 s. No PyTorch reference: the reference is
/// the configured update interval.
/// </summary>
public sealed class FreshnessBenchmark : IBenchmark
{
    public string Name => "freshness";

    public string Description => "label produced -> update that absorbed it applied: p50/p99 latency of the in-process worker on the mock Kafka cluster (goal p99 <= update interval + 2 s)";

    public string? ReferenceSource => null;

    public async Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var options = context.Quick
            ? new FreshnessOptions { UpdateInterval = TimeSpan.FromSeconds(2), LabelsPerRound = 8, SamplesPerPrompt = 2, MaxNewTokens = 8 }
            : new FreshnessOptions();
        context.Log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[bench] freshness: starting the worker (update interval {options.UpdateInterval.TotalSeconds:0.#} s) on a mock cluster, users asking {options.PromptsPerSecond:0.#} prompts/s"));
        var measurement = await FreshnessMeasurement.StartAsync(options, context.Threads, context.Log, cancellationToken);
        return [new FreshnessCase(measurement, options)];
    }

    /// <summary>One round = the next <see cref="FreshnessOptions.LabelsPerRound"/> labels, from produced to applied.</summary>
    private sealed class FreshnessCase(FreshnessMeasurement measurement, FreshnessOptions options)
        : BenchmarkCase(string.Create(CultureInfo.InvariantCulture, $"label -> applied update, {options.LabelsPerRound} labels/round, update interval {options.UpdateInterval.TotalSeconds:0.#} s"),
            "labels/s", options.LabelsPerRound)
    {
        private readonly List<IReadOnlyList<double>> rounds = [];

        public override async Task<double> RunRoundAsync(CancellationToken cancellationToken)
        {
            var timeout = TimeSpan.FromSeconds(120) + 10 * measurement.UpdateInterval;
            var (seconds, latencies) = await measurement.MeasureAsync(options.LabelsPerRound, timeout, cancellationToken);
            rounds.Add(latencies);
            return seconds;
        }

        /// <summary>p50/p99 over the measured rounds (the last ones: warm-up rounds come first) against the goal.</summary>
        public override string? Note(BenchmarkCaseResult result, IReadOnlyList<BenchmarkCaseResult> earlier)
        {
            var latencies = rounds.TakeLast(result.Ours.Seconds.Count).SelectMany(r => r).Order().ToList();
            if (latencies.Count == 0) return null;
            var p50 = Percentile(latencies, 0.50);
            var p99 = Percentile(latencies, 0.99);
            var goal = measurement.Goal.TotalSeconds;
            return string.Create(CultureInfo.InvariantCulture,
                $"latency p50 {p50:0.00} s, p99 {p99:0.00} s, max {latencies[^1]:0.00} s over {latencies.Count} labels; goal p99 <= {goal:0.#} s (update interval {measurement.UpdateInterval.TotalSeconds:0.#} s + 2 s): {(p99 <= goal ? "met" : "MISSED")}");
        }

        public override async ValueTask DisposeAsync()
        {
            await measurement.DisposeAsync();
            await base.DisposeAsync();
        }

        /// <summary>Nearest-rank percentile of sorted values.</summary>
        private static double Percentile(IReadOnlyList<double> sorted, double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
