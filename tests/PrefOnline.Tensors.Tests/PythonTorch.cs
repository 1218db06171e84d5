using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Sdk;

namespace PrefOnline.Tensors.Tests;

/// <summary>
/// Runs Python snippets with Debian's PyTorch (/usr/bin/python3 + python3-torch) as the reference for
/// a test. The snippet sees the test's input as <c>data</c> (parsed JSON), has <c>json</c>, <c>struct</c>
/// and <c>torch</c> imported, and prints one JSON document, which is returned. One Python process
/// serves every test of the run (torch's import costs seconds on a busy 2-core machine); calls are
/// serialised. A missing python3 or torch fails the test with the install command (never a skip).
/// </summary>
internal static class PythonTorch
{
    public const string Python = "/usr/bin/python3";
    public const string InstallCommand = "apt-get install -y --no-install-recommends python3-torch";

    // The server: one request per stdin line ({"script", "data"}), one answer per stdout line.
    private const string Server = """
        import contextlib, io, json, struct, sys, traceback
        protocol = sys.stdout
        try:
            import torch
        except ImportError as e:
            protocol.write(json.dumps({"ok": False, "error": "no torch: " + str(e), "missing_torch": True}) + "\n")
            protocol.flush()
            sys.exit(3)
        torch.set_num_threads(1)
        for line in iter(sys.stdin.readline, ""):
            request = json.loads(line)
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(request["script"], "<test script>", "exec"),
                         {"data": request["data"], "json": json, "struct": struct, "torch": torch, "sys": sys})
                answer = {"ok": True, "stdout": out.getvalue()}
            except BaseException:
                answer = {"ok": False, "error": traceback.format_exc(), "stdout": out.getvalue()}
            protocol.write(json.dumps(answer) + "\n")
            protocol.flush()
        """;

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static Process? process;
    private static readonly StringBuilder Stderr = new();

    public static async Task<JsonNode> RunAsync(string script, JsonNode? input = null, int timeoutSeconds = 120)
    {
        await Gate.WaitAsync();
        try
        {
            var server = Start();
            var request = new JsonObject { ["script"] = script, ["data"] = input?.DeepClone() ?? new JsonObject() };
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
            string? line;
            try
            {
                await server.StandardInput.WriteLineAsync(request.ToJsonString().AsMemory(), timeout.Token);
                await server.StandardInput.FlushAsync(timeout.Token);
                line = await server.StandardOutput.ReadLineAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Stop();
                throw new XunitException($"the PyTorch reference script ran longer than {timeoutSeconds} s");
            }
            if (line is null)
            {
                server.WaitForExit(TimeSpan.FromSeconds(2));
                string errors;
                lock (Stderr) errors = Stderr.ToString();
                Stop();
                throw new XunitException(errors.Contains("No module named 'torch'", StringComparison.Ordinal)
                    ? $"{Python} cannot import torch; install the PyTorch reference: {InstallCommand}"
                    : $"the PyTorch reference process died:\n{errors}");
            }
            var answer = JsonNode.Parse(line)!.AsObject();
            if (answer["missing_torch"] is not null)
            {
                Stop();
                throw new XunitException($"{Python} cannot import torch; install the PyTorch reference: {InstallCommand}");
            }
            if (answer["ok"]!.GetValue<bool>() != true)
                throw new XunitException($"the PyTorch reference script failed:\n{answer["error"]}");
            var output = answer["stdout"]!.GetValue<string>();
            try
            {
                return JsonNode.Parse(output) ?? throw new XunitException("the PyTorch reference printed null");
            }
            catch (JsonException e)
            {
                throw new XunitException($"the PyTorch reference printed no JSON ({e.Message}):\n{output}");
            }
        }
        finally
        {
            Gate.Release();
        }
    }

    private static Process Start()
    {
        if (process is { HasExited: false }) return process;
        if (!File.Exists(Python))
            throw new XunitException($"{Python} is missing; the PyTorch reference needs Debian's python3 with torch: {InstallCommand}");
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardErrorEncoding = new UTF8Encoding(false),
            StandardInputEncoding = new UTF8Encoding(false),
        };
        start.ArgumentList.Add("-u");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Server);
        start.Environment["OMP_NUM_THREADS"] = "1";
        process = Process.Start(start) ?? throw new XunitException($"could not start {Python}");
        // Drained continuously, so warnings can never fill the pipe and block the reference.
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (Stderr)
            {
                Stderr.AppendLine(e.Data);
                if (Stderr.Length > 20_000) Stderr.Remove(0, Stderr.Length - 20_000);
            }
        };
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        return process;
    }

    private static void Stop()
    {
        try
        {
            if (process is { HasExited: false }) process.Kill();
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        process = null;
    }

    public static double[] Doubles(JsonNode? node) =>
        node?.AsArray().Select(v => v!.GetValue<double>()).ToArray() ?? throw new XunitException("missing array in the reference's answer");

    public static JsonArray Array(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    public static JsonArray Array(IEnumerable<float> values) => new(values.Select(v => (JsonNode?)JsonValue.Create((double)v)).ToArray());

    public static JsonArray Array(IEnumerable<long> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
}
