using PrefOnline.Learning.Models;
using PrefOnline.Benchmarks;
using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Benchmarks;

public sealed class TrainBenchmarkTests
{
    [Fact]
    public void Flop_per_token_is_six_times_the_parameters_without_wpe_plus_attention()
    {
        using var tiny = PolicyModel.Create(Gpt2Config.Tiny(), 0);
        var nonPosition = StateDicts.ParameterCount(tiny) - 256 * 128;
        Assert.Equal(6.0 * nonPosition + 12.0 * 4 * 128 * 256, TrainBenchmark.FlopPerToken(Gpt2Config.Tiny(), 256));
        Assert.Equal(6_531_072, TrainBenchmark.FlopPerToken(Gpt2Config.Tiny(), 256));
    }

    [Fact]
    public void Bench_train_quick_runs_both_sides_and_reports_tokens_and_mfu()
    {
        var json = Path.Combine(Path.GetTempPath(), $"bench-train-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        try
        {
            var run = CliProcess.Run("bench", "train", "--quick", "--rounds", "1", "--json", json);
            Assert.True(run.Code == 0, run.Stderr);
            Assert.Contains("train step micro b2x16 ", run.Stdout);
            Assert.Contains("% GEMM peak", run.Stdout);
            var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(json))!;
            var results = report["results"]!.AsArray();
            Assert.Equal(3, results.Count);
            Assert.All(results, r => Assert.NotNull(r!["reference"]));
        }
        finally
        {
            File.Delete(json);
        }
    }
}
