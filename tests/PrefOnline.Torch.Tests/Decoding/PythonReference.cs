using System.Diagnostics;

namespace PrefOnline.Torch.Tests.Decoding;

/// <summary>Runs a reference script with Debian's /usr/bin/python3 (which has python3-torch). Fails
/// loudly with the install command when it is missing: these tests never skip.</summary>
internal static class PythonReference
{
    public const string Interpreter = "/usr/bin/python3";

    public static void Run(string script, params string[] arguments)
    {
        if (!File.Exists(Interpreter))
            throw new InvalidOperationException($"{Interpreter} is missing. Install: apt-get install -y --no-install-recommends python3-torch");
        var start = new ProcessStartInfo(Interpreter) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Decoding", "Python", script));
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} did not finish within 3 minutes");
        }
        if (process.ExitCode != 0)
        {
            var error = stderr.Result;
            if (error.Contains("No module named 'torch'", StringComparison.Ordinal))
                throw new InvalidOperationException($"{Interpreter} has no torch. Install: apt-get install -y --no-install-recommends python3-torch");
            throw new InvalidOperationException($"{script} failed ({process.ExitCode}): {error}{stdout.Result}");
        }
    }
}
