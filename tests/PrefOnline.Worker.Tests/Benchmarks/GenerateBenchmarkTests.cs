using System.Text.Json;
using PrefOnline.Benchmarks;

namespace PrefOnline.Worker.Tests.Benchmarks;

/// <summary><c>prefonline bench generate</c> (quick sizes: a smoke run, not a measurement) and the
/// case notes it uses for the bandwidth fraction.</summary>
public class GenerateBenchmarkTests
{
    [Fact]
    public async Task The_generate_benchmark_runs_beside_pytorch_and_notes_the_bandwidth_fraction()
    {
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 1, WarmupRounds = 0, Threads = 1, Quick = true }, TextWriter.Null);
        var report = await runner.RunAsync(BenchmarkRegistry.Select("generate"), CancellationToken.None);

        Assert.Equal(
            [
                "copy bandwidth 16 MiB (read + write)",
                "generate tiny b1 (prompt 16, 8 new) fused", "generate tiny b1 (prompt 16, 8 new) torchsharp",
                "generate tiny b4 (prompt 16, 8 new) fused", "generate tiny b4 (prompt 16, 8 new) torchsharp",
            ],
            report.Results.Select(r => r.Case));
        Assert.Equal(["GB/s", "tokens/s", "tokens/s", "tokens/s", "tokens/s"], report.Results.Select(r => r.Unit));
        Assert.All(report.Results, r => Assert.True(r.Ours.Best > 0 && r.Reference!.Best > 0, r.Case));
        // Tokens per round: batch × new tokens, so tokens/s is comparable across batch sizes.
        Assert.Equal([8.0, 8.0, 32.0, 32.0], report.Results.Skip(1).Select(r => r.WorkPerRound));

        foreach (var (index, backend) in new[] { (1, "fused"), (2, "torchsharp") })
        {
            var note = report.Results[index].Note;
            Assert.NotNull(note);
            Assert.Matches($@"^decoder backend: {backend}; weights streamed \(0\.9 MB/token, median rounds\) vs copy bandwidth [0-9.]+ GB/s: ours [0-9.]+ GB/s = [0-9]+%, PyTorch [0-9.]+ GB/s = [0-9]+% ", note);
            var table = new StringWriter();
            report.WriteTable(table);
            Assert.Contains($"{report.Results[index].Case}: {note}", table.ToString());
            using var json = JsonDocument.Parse(report.ToJson());
            Assert.Equal(note, json.RootElement.GetProperty("results")[index].GetProperty("note").GetString());
        }
        // Batch 4 reuses each weight: no bandwidth bound to report, only which decoder ran.
        Assert.Equal("decoder backend: fused", report.Results[3].Note);
        Assert.Equal("decoder backend: torchsharp", report.Results[4].Note);
    }

    [Fact]
    public async Task A_note_sees_the_results_measured_before_its_case()
    {
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 2, WarmupRounds = 0, Threads = 1, WithReference = false }, TextWriter.Null);
        var report = await runner.RunAsync([new TwoCaseBenchmark()], CancellationToken.None);
        Assert.Null(report.Results[0].Note);
        Assert.Equal("after: first", report.Results[1].Note);
    }

    private sealed class TwoCaseBenchmark : IBenchmark
    {
        public string Name => "two";

        public string Description => "a second case whose note names the cases before it";

        public string? ReferenceSource => null;

        public Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<BenchmarkCase>>([new Case("first"), new Case("second")]);

        private sealed class Case(string name) : BenchmarkCase(name, "rounds/s", 1)
        {
            public override Task<double> RunRoundAsync(CancellationToken cancellationToken) => Task.FromResult(0.001);

            public override string? Note(BenchmarkCaseResult result, IReadOnlyList<BenchmarkCaseResult> earlier) =>
                earlier.Count == 0 ? null : $"after: {string.Join(", ", earlier.Select(r => r.Case))}";
        }
    }
}
