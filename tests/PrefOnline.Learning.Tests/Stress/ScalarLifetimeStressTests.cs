using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace PrefOnline.Learning.Tests.Stress;

/// <summary>
/// TorchSharp's Scalar (and Tensor) objects free their native object in a finalizer. One made for a C# number
/// at a call (<c>t.mul_(0.9)</c>, the alpha of <c>a + b</c>, TorchSharp's own AdamW) is unreachable as soon as
/// its handle has been read, so a collection during the native call can free it while libtorch reads it:
/// garbage values, "Unknown scalar type", or a crash (src/PrefOnline.Tensors/native/finalizer_guard.c is what
/// prevents it: the finalizer thread's disposals wait 2-3 s). This test runs the worker's tensor loop (<see cref="ScalarLifetimeStress"/>) in a child
/// process, quietly and then under constant forced collections, and requires every stressed repetition to
/// reproduce the quiet run bit for bit, and the child to exit normally.
/// <para>The child runs with tiered compilation off: fully optimised code from the first call, which reports a
/// Scalar dead right after its handle is read, as a warmed-up worker's tier-1 code does. A longer run for
/// investigation: PREFONLINE_SCALAR_STRESS_SECONDS=120 (default 8). To see the failure the guard prevents, run it
/// with PREFONLINE_SCALAR_STRESS_UNGUARDED=1 (the child inherits it and turns the guard off): it then fails.</para>
/// </summary>
public sealed class ScalarLifetimeStressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Training_under_constant_garbage_collection_reproduces_the_quiet_run_bit_for_bit()
    {
        var seconds = Environment.GetEnvironmentVariable("PREFONLINE_SCALAR_STRESS_SECONDS") is { Length: > 0 } text
            ? double.Parse(text, CultureInfo.InvariantCulture)
            : 8;
        var (code, stdout, stderr, elapsed) = await RunChildAsync(seconds);
        output.WriteLine($"child exit code {code} after {elapsed.TotalSeconds:F1} s");
        output.WriteLine(stdout);
        var diagnosis = $"exit code {code} after {elapsed.TotalSeconds:F1} s; stdout:\n{stdout}\nstderr (last 4000 chars):\n{Tail(stderr, 4000)}";

        Assert.True(code == 0, $"the stress child did not finish normally (a crash or an exception from libtorch): {diagnosis}");
        var runs = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' '))
            .Where(fields => fields is ["quiet" or "stressed", _, _])
            .Select(fields => (Kind: fields[0], Fingerprint: fields[2]))
            .ToList();
        var quiet = Assert.Single(runs, r => r.Kind == "quiet").Fingerprint;
        var stressed = runs.Where(r => r.Kind == "stressed").ToList();
        Assert.NotEmpty(stressed);
        var different = stressed.Count(r => r.Fingerprint != quiet);
        Assert.True(different == 0, $"{different} of {stressed.Count} stressed repetitions differ from the quiet run: {diagnosis}");
    }

    private static async Task<(int Code, string Stdout, string Stderr, TimeSpan Elapsed)> RunChildAsync(double seconds)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { typeof(ScalarLifetimeStress).Assembly.Location, ScalarLifetimeStress.Verb, seconds.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(argument);
        start.Environment["DOTNET_TieredCompilation"] = "0";
        start.Environment["MKL_CBWR"] = "AUTO,STRICT";              // reproducible GEMMs at 2 threads (tests/reproducible.runsettings)
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {dotnet}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ChildTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the stress child did not finish within {ChildTimeout}: {Tail(await stderr, 2000)}");
        }
        return (process.ExitCode, await stdout, await stderr, clock.Elapsed);
    }

    private static string Tail(string text, int length) => text.Length <= length ? text : text[^length..];
}
