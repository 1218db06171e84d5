using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PrefOnline.Benchmarks;

/// <summary>Everything one <c>prefonline bench</c> invocation measured: a table for people, JSON for tools.</summary>
public sealed record BenchmarkReport(BenchmarkEnvironment Environment, IReadOnlyList<BenchmarkCaseResult> Results)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public async Task WriteJsonAsync(string path, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(path, ToJson() + "\n", cancellationToken);
    }

    /// <summary>The human report: environment line, then one row per case with both sides and the ratio.</summary>
    public void WriteTable(TextWriter output)
    {
        var e = Environment;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"threads {e.Threads} (cores {e.ProcessorCount}), rounds {e.Rounds}{(e.Quick ? ", QUICK sizes (not a measurement)" : "")}"));
        if (e.Libtorch is not null)
            output.WriteLine($"ours:      libtorch {e.Libtorch} via TorchSharp {e.TorchSharp}, intra-op threads {e.LibtorchThreads}");
        if (e.ReferenceTorch is not null)
            output.WriteLine($"reference: PyTorch {e.ReferenceTorch} (python {e.ReferencePython}), intra-op threads {e.ReferenceThreads}");
        output.WriteLine();

        string[] header = ["benchmark", "case", "unit", "ours best", "ours median", "torch best", "torch median", "ratio", "best ratio", "target"];
        var rows = new List<string[]> { header };
        foreach (var r in Results)
        {
            rows.Add([
                r.Benchmark,
                r.Case,
                r.Unit,
                Number(r.Ours.Best),
                Number(r.Ours.Median),
                r.Reference is null ? "-" : Number(r.Reference.Best),
                r.Reference is null ? "-" : Number(r.Reference.Median),
                r.Ratio is { } ratio ? ratio.ToString("F2", CultureInfo.InvariantCulture) : "-",
                r.BestRatio is { } best ? best.ToString("F2", CultureInfo.InvariantCulture) : "-",
                r.TargetThroughput is { } target ? $">={Number(target)} {(r.MeetsTarget == true ? "met" : "MISSED")}" : "-",
            ]);
        }
        var widths = Enumerable.Range(0, header.Length).Select(c => rows.Max(row => row[c].Length)).ToArray();
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            // Text columns left-aligned, numbers right-aligned.
            var cells = row.Select((cell, c) => c < 3 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]));
            output.WriteLine(string.Join("  ", cells).TrimEnd());
            if (i == 0) output.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        }
        output.WriteLine();
        foreach (var r in Results.Where(r => r.Note is not null)) output.WriteLine($"{r.Case}: {r.Note}");
        output.WriteLine("ratio = ours / PyTorch throughput (median over interleaved round pairs); above 1.00 means PrefOnline is faster.");
    }

    private static string Number(double value) => value switch
    {
        >= 1000 => value.ToString("F0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("F1", CultureInfo.InvariantCulture),
        _ => value.ToString("F3", CultureInfo.InvariantCulture),
    };
}
