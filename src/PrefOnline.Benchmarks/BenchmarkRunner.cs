using PrefOnline.Tensors;

namespace PrefOnline.Benchmarks;

/// <summary>
/// Runs benchmarks the same way every time: build the cases, set up the reference side of each in
/// one long-lived PyTorch process, warm both sides up, then alternate measured rounds (ours,
/// reference, reference, ours, ...: the order flips every pair so neither side always runs right
/// after the other) and summarise best and median throughput and the ratio.
/// </summary>
public sealed class BenchmarkRunner(BenchmarkRunOptions options, TextWriter log)
{
    public async Task<BenchmarkReport> RunAsync(IReadOnlyList<IBenchmark> benchmarks, CancellationToken cancellationToken)
    {
        options.Validate();
        var started = DateTimeOffset.UtcNow;
        var results = new List<BenchmarkCaseResult>();
        using var context = new BenchmarkContext(options.Threads, options.Quick, log);
        PythonReferenceSession? reference = null;
        try
        {
            foreach (var benchmark in benchmarks)
            {
                cancellationToken.ThrowIfCancellationRequested();
                log.WriteLine($"[bench] {benchmark.Name}: {benchmark.Description}");
                var cases = await benchmark.CreateCasesAsync(context, cancellationToken);
                try
                {
                    var selected = cases.Where(options.Selects).ToList();
                    var needsReference = options.WithReference && selected.Any(c => c.Reference is not null);
                    if (needsReference)
                    {
                        if (benchmark.ReferenceSource is null)
                            throw new InvalidOperationException($"benchmark '{benchmark.Name}' has cases with a PyTorch reference but no ReferenceSource");
                        if (reference is null)
                        {
                            log.WriteLine($"[bench] starting the PyTorch reference ({options.PythonPath}, {options.Threads} threads)");
                            reference = await PythonReferenceSession.StartAsync(options.Threads, cancellationToken, options.PythonPath);
                        }
                        await reference.LoadModuleAsync(benchmark.Name, benchmark.ReferenceSource, cancellationToken);
                    }
                    foreach (var benchmarkCase in selected)
                    {
                        var result = await MeasureAsync(benchmark, benchmarkCase, needsReference ? reference : null, cancellationToken);
                        results.Add(result with { Note = benchmarkCase.Note(result, results) });
                    }
                }
                finally
                {
                    foreach (var benchmarkCase in cases) await benchmarkCase.DisposeAsync();
                }
            }

            var environment = new BenchmarkEnvironment
            {
                Started = started,
                ProcessorCount = Environment.ProcessorCount,
                Threads = options.Threads,
                Rounds = options.Rounds,
                Quick = options.Quick,
                ReferenceTorch = reference?.TorchVersion,
                ReferencePython = reference?.PythonVersion,
                ReferenceThreads = reference?.Threads,
            };
            if (context.HasTensorThread)
            {
                var threads = await context.TensorThread.RunAsync(() => TorchEngine.Threads, cancellationToken);
                environment = environment with
                {
                    Libtorch = TorchEngine.LibTorchVersion, LibtorchThreads = threads, TorchSharp = $"{TorchEngine.TorchSharpVersion} ({TorchEngine.Backend})",
                };
            }
            return new BenchmarkReport(environment, results);
        }
        finally
        {
            if (reference is not null) await reference.DisposeAsync();
        }
    }

    private async Task<BenchmarkCaseResult> MeasureAsync(
        IBenchmark benchmark, BenchmarkCase benchmarkCase, PythonReferenceSession? reference, CancellationToken cancellationToken)
    {
        string? referenceId = null;
        if (reference is not null && benchmarkCase.Reference is { } referenceCase)
            referenceId = await reference.SetupAsync(benchmark.Name, referenceCase, cancellationToken);
        try
        {
            log.WriteLine($"[bench] {benchmark.Name} / {benchmarkCase.Name}: {options.WarmupRounds} warm-up + {options.Rounds} rounds per side");
            for (var i = 0; i < options.WarmupRounds; i++)
            {
                await benchmarkCase.RunRoundAsync(cancellationToken);
                if (referenceId is not null) await reference!.RunRoundAsync(referenceId, cancellationToken);
            }

            var ours = new List<double>(options.Rounds);
            var theirs = new List<double>(options.Rounds);
            for (var round = 0; round < options.Rounds; round++)
            {
                // ABBA order: within a pair each side runs first half of the time.
                if (referenceId is not null && round % 2 == 1)
                {
                    theirs.Add(await reference!.RunRoundAsync(referenceId, cancellationToken));
                    ours.Add(await benchmarkCase.RunRoundAsync(cancellationToken));
                }
                else
                {
                    ours.Add(await benchmarkCase.RunRoundAsync(cancellationToken));
                    if (referenceId is not null) theirs.Add(await reference!.RunRoundAsync(referenceId, cancellationToken));
                }
            }

            return new BenchmarkCaseResult(
                benchmark.Name,
                benchmarkCase.Name,
                benchmarkCase.Unit,
                benchmarkCase.WorkPerRound,
                ThroughputStatistics.From(ours, benchmarkCase.WorkPerRound),
                referenceId is null ? null : ThroughputStatistics.From(theirs, benchmarkCase.WorkPerRound),
                benchmarkCase.TargetThroughput);
        }
        finally
        {
            if (referenceId is not null) await reference!.DropAsync(referenceId, cancellationToken);
        }
    }
}
