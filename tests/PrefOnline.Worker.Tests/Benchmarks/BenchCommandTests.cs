using System.Diagnostics;
using System.Text.Json;

namespace PrefOnline.Worker.Tests.Benchmarks;

/// <summary>`prefonline bench` as a user runs it: the real binary in a child process.</summary>
public class BenchCommandTests
{
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "prefonline.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Bench_torch_quick_prints_the_table_and_writes_json()
    {
        var json = Path.Combine(Path.GetTempPath(), $"prefonline-bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, stdout, stderr) = await RunAsync("bench", "torch", "--quick", "--rounds", "1", "--warmup", "0", "--threads", "1", "--json", json);
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Contains("ratio", stdout);
            Assert.Contains("gemm 256x256x256 fp32", stdout);
            Assert.Contains("mlp train step", stdout);
            Assert.Contains("QUICK", stdout);
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            Assert.Equal(3, doc.RootElement.GetProperty("results").GetArrayLength());
            Assert.True(doc.RootElement.GetProperty("results")[0].GetProperty("ratio").GetDouble() > 0);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task An_unknown_benchmark_is_a_usage_error_naming_the_choices()
    {
        var (code, _, stderr) = await RunAsync("bench", "trian", "--no-reference");
        Assert.Equal(2, code);
        Assert.Contains("prefonline: unknown benchmark 'trian'; choose one of: torch", stderr);
        Assert.DoesNotContain("   at ", stderr);  // one line, no stack trace
    }

    [Fact]
    public async Task Bad_rounds_is_a_usage_error()
    {
        var (code, _, stderr) = await RunAsync("bench", "torch", "--rounds", "0");
        Assert.Equal(2, code);
        Assert.Contains("--rounds", stderr);
    }
}
