using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PrefOnline.Learning.Tests.Support;

/// <summary>
/// Runs a Python script under Debian's interpreter with PyTorch (<c>/usr/bin/python3</c>; the pyenv
/// <c>python3</c> on PATH has no torch) to compute reference values on the same tensors. Input goes in
/// as one JSON document on stdin, the script prints one JSON document on stdout. A missing interpreter
/// or torch fails the test with the install command: a reference that cannot run never passes silently.
/// </summary>
public static class PythonReference
{
    public const string Interpreter = "/usr/bin/python3";
    public const string InstallCommand = "apt-get install -y python3-torch";

    /// <summary>Runs <paramref name="script"/> (it reads <c>json.load(sys.stdin)</c> and prints its answer
    /// with <c>json.dumps</c>) and returns the parsed answer.</summary>
    public static JsonNode Run(string script, JsonNode input, int timeoutSeconds = 120)
    {
        if (!File.Exists(Interpreter))
            throw new InvalidOperationException($"{Interpreter} is missing; the PyTorch reference needs Debian's python with torch: {InstallCommand}");
        var path = Path.Combine(Path.GetTempPath(), $"prefonline-ref-{Guid.NewGuid():N}.py");
        File.WriteAllText(path, "import json, sys\ntry:\n    import torch\nexcept ImportError:\n    sys.stderr.write('NO_TORCH')\n    sys.exit(3)\n" + script);
        try
        {
            var start = new ProcessStartInfo(Interpreter, [path])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
            };
            start.Environment["OMP_NUM_THREADS"] = "1";
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {Interpreter}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(input.ToJsonString());
            process.StandardInput.Close();
            if (!process.WaitForExit(timeoutSeconds * 1000))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"the PyTorch reference did not finish within {timeoutSeconds} s");
            }
            var error = stderr.GetAwaiter().GetResult();
            if (process.ExitCode == 3 && error.Contains("NO_TORCH", StringComparison.Ordinal))
                throw new InvalidOperationException($"{Interpreter} has no torch module; install it: {InstallCommand}");
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"the PyTorch reference failed (exit {process.ExitCode}): {error}");
            return JsonNode.Parse(stdout.GetAwaiter().GetResult()) ?? throw new InvalidOperationException("the PyTorch reference printed nothing");
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static JsonArray ToJson(IEnumerable<double> values) => new(values.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray());

    public static JsonArray ToJson(double[,] values)
    {
        var rows = new JsonArray();
        for (var i = 0; i < values.GetLength(0); i++)
            rows.Add(ToJson(Enumerable.Range(0, values.GetLength(1)).Select(j => values[i, j])));
        return rows;
    }

    public static double[] Doubles(JsonNode? node) =>
        node?.AsArray().Select(v => v!.GetValue<double>()).ToArray() ?? throw new InvalidOperationException("missing array in the reference's answer");
}
