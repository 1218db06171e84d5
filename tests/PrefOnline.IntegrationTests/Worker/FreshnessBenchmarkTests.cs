using System.Text.RegularExpressions;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Benchmarks;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// <c>prefonline bench freshness --quick</c> runs end to end (worker in process on the mock cluster, simulated
/// users, label audit read back) and reports labels/s and latency percentiles against its goal. A smoke run:
/// the numbers are not asserted (speed is measured by the benchmark, never by tests).
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed partial class FreshnessBenchmarkTests
{
    [Fact]
    public async Task Quick_freshness_run_reports_latency_percentiles_against_the_update_interval_goal()
    {
        var log = new StringWriter();
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Quick = true, Rounds = 2, WarmupRounds = 0, Threads = 1, WithReference = false }, log);
        var report = await runner.RunAsync(BenchmarkRegistry.Select("freshness"), CancellationToken.None);

        var result = Assert.Single(report.Results);
        Assert.Equal("labels/s", result.Unit);
        Assert.Equal(2, result.Ours.Seconds.Count);
        Assert.All(result.Ours.Seconds, s => Assert.True(s > 0 && double.IsFinite(s), $"round seconds {s}"));
        var note = result.Note ?? throw new Xunit.Sdk.XunitException("no latency note; log:\n" + log);
        var match = NotePattern().Match(note);
        Assert.True(match.Success, note);
        var p50 = double.Parse(match.Groups["p50"].Value, System.Globalization.CultureInfo.InvariantCulture);
        var p99 = double.Parse(match.Groups["p99"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(p50 > 0 && p50 <= p99, note);
        Assert.Equal(16, int.Parse(match.Groups["labels"].Value, System.Globalization.CultureInfo.InvariantCulture)); // 2 rounds x 8 labels
        Assert.Contains("goal p99 <= 4 s", note);
    }

    [GeneratedRegex(@"p50 (?<p50>[0-9.]+) s, p99 (?<p99>[0-9.]+) s, max [0-9.]+ s over (?<labels>[0-9]+) labels")]
    private static partial Regex NotePattern();
}
