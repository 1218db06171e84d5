using PrefOnline.Benchmarks;

namespace PrefOnline.Worker.Tests.Benchmarks;

public class BenchmarkStatisticsTests
{
    [Fact]
    public void Throughput_is_work_over_seconds_best_and_median()
    {
        var s = ThroughputStatistics.From([2.0, 1.0, 4.0, 0.5], workPerRound: 8);
        Assert.Equal(16, s.Best);            // 8 / 0.5
        Assert.Equal((4 + 8) / 2.0, s.Median);  // throughputs 2, 4, 8, 16
        Assert.Equal([2.0, 1.0, 4.0, 0.5], s.Seconds);
        Assert.Equal(3, ThroughputStatistics.MedianOf([5, 1, 3]));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_round_without_a_positive_finite_time_is_refused(double seconds)
    {
        var e = Assert.Throws<ArgumentException>(() => ThroughputStatistics.From([1.0, seconds], 1));
        Assert.Contains("positive, finite time", e.Message);
        Assert.Throws<ArgumentException>(() => ThroughputStatistics.From([], 1));
    }

    [Fact]
    public void Ratio_is_the_median_of_paired_round_ratios_so_a_spike_in_one_pair_does_not_decide()
    {
        // Ours is twice as fast in every pair, but pair 2 was hit by a load spike on both sides.
        var ours = ThroughputStatistics.From([1.0, 1.0, 10.0], 1);
        var theirs = ThroughputStatistics.From([2.0, 2.0, 20.0], 1);
        var result = new BenchmarkCaseResult("b", "c", "op/s", 1, ours, theirs, TargetThroughput: 0.5);
        Assert.Equal(2.0, result.Ratio);
        Assert.Equal(2.0, result.BestRatio);
        Assert.True(result.MeetsTarget);
        Assert.False((result with { TargetThroughput = 1.5 }).MeetsTarget);
        Assert.Null((result with { TargetThroughput = null }).MeetsTarget);
        Assert.Null((result with { Reference = null }).Ratio);
    }

    [Fact]
    public void Report_prints_a_table_with_ratios_and_targets_and_round_trips_as_json()
    {
        var report = new BenchmarkReport(
            new BenchmarkEnvironment { Started = DateTimeOffset.UnixEpoch, ProcessorCount = 2, Threads = 2, Rounds = 3, Quick = false, Libtorch = "1.13.0", LibtorchThreads = 2, ReferenceTorch = "1.13.0a0", ReferencePython = "3.11.2", ReferenceThreads = 2 },
            [
                new BenchmarkCaseResult("torch", "gemm 1024", "GFLOP/s", 17.18, ThroughputStatistics.From([0.1, 0.11, 0.12], 17.18), ThroughputStatistics.From([0.12, 0.12, 0.13], 17.18), 140),
                new BenchmarkCaseResult("ingest", "records", "msg/s", 1000, ThroughputStatistics.From([0.5], 1000), null, null),
            ]);
        var text = new StringWriter();
        report.WriteTable(text);
        var table = text.ToString();
        Assert.Contains("libtorch 1.13.0", table);
        Assert.Contains("PyTorch 1.13.0a0", table);
        var gemm = table.Split('\n').Single(l => l.StartsWith("torch ", StringComparison.Ordinal));
        Assert.Contains("171.8", gemm);   // best: 17.18 / 0.1
        Assert.Contains("1.09", gemm);     // ratio: median of 0.12/0.1, 0.12/0.11, 0.13/0.12
        Assert.Contains("1.20", gemm);     // best ratio: (17.18/0.1) / (17.18/0.12)
        Assert.Contains(">=140.0 met", gemm);
        var ingest = table.Split('\n').Single(l => l.StartsWith("ingest ", StringComparison.Ordinal));
        Assert.Contains("2000", ingest);
        Assert.Contains(" - ", ingest);

        var json = System.Text.Json.JsonDocument.Parse(report.ToJson()).RootElement;
        Assert.Equal(2, json.GetProperty("environment").GetProperty("threads").GetInt32());
        var first = json.GetProperty("results")[0];
        Assert.Equal("gemm 1024", first.GetProperty("case").GetString());
        Assert.Equal(0.12 / 0.11, first.GetProperty("ratio").GetDouble(), 10);
        Assert.Equal(3, first.GetProperty("ours").GetProperty("seconds").GetArrayLength());
        Assert.True(first.GetProperty("meets_target").GetBoolean());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, json.GetProperty("results")[1].GetProperty("reference").ValueKind);
    }

    [Fact]
    public void Registry_selects_by_name_or_all_and_names_the_choices_for_a_typo()
    {
        Assert.Equal(BenchmarkRegistry.All, BenchmarkRegistry.Select("all"));
        Assert.Equal("torch", Assert.Single(BenchmarkRegistry.Select("TORCH")).Name);
        var e = Assert.Throws<ArgumentException>(() => BenchmarkRegistry.Select("trian"));
        Assert.Contains("unknown benchmark 'trian'", e.Message);
        Assert.Contains("torch", e.Message);
        Assert.Contains("all", e.Message);
        Assert.Equal(BenchmarkRegistry.All.Count, BenchmarkRegistry.All.Select(b => b.Name).Distinct().Count());
        Assert.All(BenchmarkRegistry.All, b => Assert.Matches("^[a-z][a-z0-9-]*$", b.Name));
        Assert.All(BenchmarkRegistry.All, b => Assert.False(string.IsNullOrWhiteSpace(b.Description)));
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BenchmarkRunOptions { Rounds = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new BenchmarkRunOptions { WarmupRounds = -1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new BenchmarkRunOptions { Threads = 0 }.Validate());
        new BenchmarkRunOptions().Validate();
    }
}
