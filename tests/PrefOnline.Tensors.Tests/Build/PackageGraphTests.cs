using System.Diagnostics;
using System.Text.Json;

namespace PrefOnline.Tensors.Tests.Build;

/// <summary>
/// The TorchBackend switch (Directory.Build.props): the package graph MSBuild evaluates for each value.
/// Evaluation only (`dotnet msbuild -getItem`), no restore: TorchSharp-cuda-linux is not served by the
/// project's package mirror, so the cuda graph can be checked here but not restored.
/// </summary>
public sealed class PackageGraphTests
{
    private static readonly string Project = Path.Combine(BuildFacts.RepositoryRoot, "src", "PrefOnline.Tensors", "PrefOnline.Tensors.csproj");

    [Theory]
    [InlineData(null, "TorchSharp-cpu", "TorchSharp-cuda-linux")]
    [InlineData("cpu", "TorchSharp-cpu", "TorchSharp-cuda-linux")]
    [InlineData("cuda", "TorchSharp-cuda-linux", "TorchSharp-cpu")]
    public async Task TorchBackend_selects_one_TorchSharp_runtime_package(string? backend, string expected, string absent)
    {
        var (exitCode, output) = await MsBuildAsync(backend is null ? [] : [$"-p:TorchBackend={backend}"],
            "-getItem:PackageReference", "-getItem:PackageVersion", "-getProperty:TorchBackend", "-getProperty:RuntimeIdentifier");
        Assert.True(exitCode == 0, output);

        using var json = JsonDocument.Parse(output);
        var references = json.RootElement.GetProperty("Items").GetProperty("PackageReference").EnumerateArray()
            .Select(i => i.GetProperty("Identity").GetString()).ToList();
        var versions = json.RootElement.GetProperty("Items").GetProperty("PackageVersion").EnumerateArray()
            .ToDictionary(i => i.GetProperty("Identity").GetString()!, i => i.GetProperty("Version").GetString());
        Assert.Contains(expected, references);
        Assert.DoesNotContain(absent, references);
        Assert.Equal(BuildFacts.TorchSharpVersion, versions[expected]);
        Assert.Equal(backend ?? "cpu", json.RootElement.GetProperty("Properties").GetProperty("TorchBackend").GetString());
        Assert.Equal("linux-x64", json.RootElement.GetProperty("Properties").GetProperty("RuntimeIdentifier").GetString());
    }

    [Fact]
    public async Task An_unknown_TorchBackend_fails_the_build_naming_the_valid_values()
    {
        var (exitCode, output) = await MsBuildAsync(["-p:TorchBackend=rocm"], "-t:CheckTorchBackend");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("TorchBackend 'rocm' is not known: use cpu", output);
    }

    private static async Task<(int ExitCode, string Output)> MsBuildAsync(string[] properties, params string[] request)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = BuildFacts.RepositoryRoot,
        };
        foreach (var argument in new[] { "msbuild", Project, "-nologo", "-v:quiet" }.Concat(properties).Concat(request)) start.ArgumentList.Add(argument);
        // The test host runs under `dotnet test`, whose MSBuild settings must not leak into this evaluation.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            start.Environment.Remove(key);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stdout) + (await stderr));
    }
}
