using System.Text.Json.Nodes;
using PrefOnline.Benchmarks;

namespace PrefOnline.Worker.Tests.Benchmarks;

/// <summary>The runner and the PyTorch reference session, end to end with Debian's /usr/bin/python3.</summary>
public class BenchmarkRunnerTests
{
    /// <summary>
    /// Each side's "seconds" is the wall-clock time at which its round ran (the system clock both
    /// processes share), so the result reveals the order the runner used.
    /// </summary>
    private sealed class ClockBenchmark : IBenchmark
    {
        public List<string> Disposed { get; } = [];

        public string Name => "clock";

        public string Description => "records when each side's rounds ran";

        public string? ReferenceSource => """
            import time

            def setup_clock(args):
                assert args["answer"] == 42
                return lambda: time.time()
            """;

        public Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<BenchmarkCase>>([new ClockCase(this)]);

        private sealed class ClockCase(ClockBenchmark owner) : BenchmarkCase("clock", "rounds/s", 1)
        {
            public override ReferenceCase Reference => new("clock", new JsonObject { ["answer"] = 42 });

            public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
                Task.FromResult((DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds);

            public override ValueTask DisposeAsync()
            {
                owner.Disposed.Add(Name);
                return base.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Rounds_are_interleaved_with_the_reference_in_ABBA_order_and_cases_are_disposed()
    {
        var benchmark = new ClockBenchmark();
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 4, WarmupRounds = 1, Threads = 1 }, TextWriter.Null);
        var report = await runner.RunAsync([benchmark], CancellationToken.None);

        var result = Assert.Single(report.Results);
        Assert.Equal(["clock"], benchmark.Disposed);
        var ours = result.Ours.Seconds;
        var theirs = result.Reference!.Seconds;
        Assert.Equal(4, ours.Count);
        Assert.Equal(4, theirs.Count);
        // Pairs alternate who goes first: ours, theirs | theirs, ours | ours, theirs | theirs, ours.
        Assert.True(ours[0] < theirs[0] && theirs[0] < theirs[1] && theirs[1] < ours[1], "pairs 1 and 2 out of order");
        Assert.True(ours[1] < ours[2] && ours[2] < theirs[2] && theirs[2] < theirs[3] && theirs[3] < ours[3], "pairs 3 and 4 out of order");
        Assert.Equal("1.13.0a0", report.Environment.ReferenceTorch);
        Assert.Equal(1, report.Environment.ReferenceThreads);
        Assert.Null(report.Environment.Libtorch);  // no tensor work: libtorch was never touched
    }

    [Fact]
    public async Task Without_the_reference_only_our_side_is_measured()
    {
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 2, WithReference = false }, TextWriter.Null);
        var report = await runner.RunAsync([new ClockBenchmark()], CancellationToken.None);
        Assert.Null(Assert.Single(report.Results).Reference);
        Assert.Null(report.Environment.ReferenceTorch);
    }

    [Fact]
    public async Task The_torch_benchmark_runs_in_quick_mode_beside_pytorch()
    {
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 1, WarmupRounds = 0, Threads = 1, Quick = true }, TextWriter.Null);
        var report = await runner.RunAsync(BenchmarkRegistry.Select("torch"), CancellationToken.None);
        Assert.Equal(["GFLOP/s", "ops/s", "steps/s"], report.Results.Select(r => r.Unit));
        Assert.All(report.Results, r =>
        {
            Assert.NotNull(r.Reference);
            Assert.True(r.Ours.Best > 0 && r.Reference!.Best > 0);
        });
        Assert.Equal(1, report.Environment.LibtorchThreads);
        Assert.StartsWith("0.107.0 (cpu)", report.Environment.TorchSharp);
        Assert.Equal("2.10.0", report.Environment.Libtorch);
    }

    [Fact]
    public async Task A_case_filter_runs_only_matching_cases_and_still_disposes_all()
    {
        var runner = new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 1, WarmupRounds = 0, Threads = 1, Quick = true, WithReference = false, CaseFilter = "GEMM" }, TextWriter.Null);
        var report = await runner.RunAsync(BenchmarkRegistry.Select("torch"), CancellationToken.None);
        Assert.Equal(["gemm 256x256x256 fp32"], report.Results.Select(r => r.Case));

        var benchmark = new ClockBenchmark();
        var none = await new BenchmarkRunner(new BenchmarkRunOptions { Rounds = 1, CaseFilter = "nothing" }, TextWriter.Null).RunAsync([benchmark], CancellationToken.None);
        Assert.Empty(none.Results);
        Assert.Null(none.Environment.ReferenceTorch);  // no reference started for nothing
        Assert.Equal(["clock"], benchmark.Disposed);
    }

    [Fact]
    public async Task Session_reports_python_errors_with_the_traceback_and_keeps_serving()
    {
        await using var session = await PythonReferenceSession.StartAsync(2, CancellationToken.None);
        Assert.Equal(2, session.Threads);
        Assert.StartsWith("1.13", session.TorchVersion);
        await session.LoadModuleAsync("m", """
            def setup_ok(args):
                return lambda: 0.25

            def setup_boom(args):
                def round():
                    raise ValueError("boom " + str(args["n"]))
                return round
            """, CancellationToken.None);

        var missing = await Assert.ThrowsAsync<PythonReferenceException>(() => session.SetupAsync("m", new ReferenceCase("nope", new JsonObject()), CancellationToken.None));
        Assert.Contains("has no setup_nope", missing.Message);

        var boom = await session.SetupAsync("m", new ReferenceCase("boom", new JsonObject { ["n"] = 7 }), CancellationToken.None);
        var e = await Assert.ThrowsAsync<PythonReferenceException>(() => session.RunRoundAsync(boom, CancellationToken.None));
        Assert.Contains("failed in 'round'", e.Message);
        Assert.Contains("ValueError: boom 7", e.Message);

        var ok = await session.SetupAsync("m", new ReferenceCase("ok", new JsonObject()), CancellationToken.None);
        Assert.Equal(0.25, await session.RunRoundAsync(ok, CancellationToken.None));

        var syntax = await Assert.ThrowsAsync<PythonReferenceException>(() => session.LoadModuleAsync("bad", "def (", CancellationToken.None));
        Assert.Contains("SyntaxError", syntax.Message);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_python_without_torch_fails_with_the_install_command()
    {
        // /usr/bin/python3 -S does not add dist-packages to the path: exactly a python without python3-torch.
        var wrapper = Path.Combine(Path.GetTempPath(), $"prefonline-python-without-torch-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(wrapper, "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var e = await Assert.ThrowsAsync<PythonReferenceException>(() => PythonReferenceSession.StartAsync(1, CancellationToken.None, wrapper));
            Assert.Contains("cannot import torch", e.Message);
            Assert.Contains(PythonReferenceSession.InstallCommand, e.Message);
        }
        finally
        {
            File.Delete(wrapper);
        }

        var absent = await Assert.ThrowsAsync<PythonReferenceException>(() => PythonReferenceSession.StartAsync(1, CancellationToken.None, "/nonexistent/python3"));
        Assert.Contains("apt-get install -y --no-install-recommends python3-torch", absent.Message);
    }

    [Fact]
    public async Task Cancelling_a_call_stops_the_reference_process()
    {
        var session = await PythonReferenceSession.StartAsync(1, CancellationToken.None);
        await session.LoadModuleAsync("slow", """
            import time

            def setup_slow(args):
                return lambda: time.sleep(60)
            """, CancellationToken.None);
        var id = await session.SetupAsync("slow", new ReferenceCase("slow", new JsonObject()), CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => session.RunRoundAsync(id, cts.Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30));
        await session.DisposeAsync();
    }
}
