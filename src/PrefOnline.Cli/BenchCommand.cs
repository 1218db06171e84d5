using PrefOnline.Benchmarks;
using System.CommandLine;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline bench [torch|train|generate|ingest|freshness|all] [--json FILE] [--rounds N] [--threads N] [--case TEXT]</c>:
/// throughput of our code beside the PyTorch reference (Debian's /usr/bin/python3 with python3-torch)
/// doing the same work, rounds interleaved in one invocation, printed as a table of ratios.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var which = new Argument<string>("benchmark")
        {
            Description = $"Which benchmark: {string.Join(", ", BenchmarkRegistry.Names)}.",
            DefaultValueFactory = _ => BenchmarkRegistry.AllName,
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file." };
        var rounds = new Option<int>("--rounds") { Description = "Measured rounds per side and case.", DefaultValueFactory = _ => 7 };
        var warmup = new Option<int>("--warmup") { Description = "Unmeasured warm-up rounds per side and case.", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads")
        {
            Description = "Intra-op threads on both sides (default: the core count).",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var quick = new Option<bool>("--quick") { Description = "Tiny sizes: checks the benchmark runs; the numbers mean nothing." };
        var noReference = new Option<bool>("--no-reference") { Description = "Measure only our side (no PyTorch process)." };
        var filter = new Option<string?>("--case") { Description = "Only cases whose name contains this text (e.g. gemm)." };

        var command = new Command("bench", "Measure throughput against the PyTorch reference, interleaved, as ratios.")
        {
            which, json, rounds, warmup, threads, quick, noReference, filter,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            IReadOnlyList<IBenchmark> selected;
            try
            {
                selected = BenchmarkRegistry.Select(parse.GetValue(which) ?? BenchmarkRegistry.AllName);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message, CliAction.UsageError);
            }
            var options = new BenchmarkRunOptions
            {
                Rounds = parse.GetValue(rounds),
                WarmupRounds = parse.GetValue(warmup),
                Threads = parse.GetValue(threads),
                Quick = parse.GetValue(quick),
                WithReference = !parse.GetValue(noReference),
                CaseFilter = parse.GetValue(filter),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new CliException($"--{e.ParamName?.ToLowerInvariant()}: {e.Message.Split(Environment.NewLine)[0]}", CliAction.UsageError);
            }

            var report = await new BenchmarkRunner(options, Console.Error).RunAsync(selected, token);
            report.WriteTable(Console.Out);
            if (parse.GetValue(json) is { } file)
            {
                await report.WriteJsonAsync(file.FullName, token);
                Console.Error.WriteLine($"[bench] results written to {file.FullName}");
            }
            return 0;
        }, ct));
        return command;
    }
}
