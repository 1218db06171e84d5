using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PrefOnline.Benchmarks;

/// <summary>
/// One long-lived <c>/usr/bin/python3</c> process running the reference harness
/// (reference_harness.py, embedded in this assembly), spoken to over stdin/stdout with one JSON object
/// per line. Keeping the process alive lets a benchmark interleave C# rounds and PyTorch rounds in one
/// invocation (C#, PyTorch, C#, ...), so both sides see the same machine load; torch's import cost is
/// paid once.
/// </summary>
/// <remarks>
/// PyTorch is a reference for benchmarks only, never part of the product. Debian's python3 at
/// <see cref="DefaultPythonPath"/> is used on purpose: <c>python3</c> on PATH may be a build without torch.
/// Not thread-safe: one caller at a time.
/// </remarks>
public sealed class PythonReferenceSession : IAsyncDisposable
{
    public const string DefaultPythonPath = "/usr/bin/python3";

    /// <summary>The command that makes the reference available (printed whenever it is missing).</summary>
    public const string InstallCommand = "apt-get install -y --no-install-recommends python3-torch";

    private const int StderrTailChars = 4000;

    private readonly Process process;
    private readonly StringBuilder stderrTail = new();
    private int nextId;
    private bool disposed;

    private PythonReferenceSession(Process process, string pythonPath)
    {
        this.process = process;
        PythonPath = pythonPath;
    }

    public string PythonPath { get; }

    /// <summary>torch.__version__ of the reference.</summary>
    public string TorchVersion { get; private set; } = "";

    public string PythonVersion { get; private set; } = "";

    /// <summary>torch.get_num_threads() in the reference after the thread count was set.</summary>
    public int Threads { get; private set; }

    /// <summary>Starts the reference process and sets torch's intra-op threads to <paramref name="threads"/>.</summary>
    public static async Task<PythonReferenceSession> StartAsync(int threads, CancellationToken cancellationToken, string pythonPath = DefaultPythonPath)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (!File.Exists(pythonPath))
            throw new PythonReferenceException($"{pythonPath} does not exist; the PyTorch reference needs Debian's python3 with torch: {InstallCommand}");

        var start = new ProcessStartInfo(pythonPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardErrorEncoding = new UTF8Encoding(false),
            StandardInputEncoding = new UTF8Encoding(false),
        };
        start.ArgumentList.Add("-u");  // unbuffered: every answer line is flushed at once
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(ReadHarness());
        // The same intra-op thread count as the C# side from the very first op (torch.set_num_threads
        // follows in "hello"); OpenMP reads this at start-up.
        start.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new PythonReferenceException($"could not start {pythonPath}");
        }
        catch (Win32Exception e)
        {
            throw new PythonReferenceException($"could not start {pythonPath} ({e.Message}); install the PyTorch reference: {InstallCommand}");
        }

        var session = new PythonReferenceSession(process, pythonPath);
        process.ErrorDataReceived += (_, e) => session.AppendStderr(e.Data);
        process.BeginErrorReadLine();
        try
        {
            var hello = await session.CallAsync(new JsonObject { ["op"] = "hello", ["threads"] = threads }, cancellationToken);
            session.TorchVersion = hello["torch"]?.GetValue<string>() ?? "";
            session.PythonVersion = hello["python"]?.GetValue<string>() ?? "";
            session.Threads = hello["threads"]?.GetValue<int>() ?? 0;
            return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>Executes a benchmark's reference source as module <paramref name="module"/>.</summary>
    public Task LoadModuleAsync(string module, string source, CancellationToken cancellationToken) =>
        CallAsync(new JsonObject { ["op"] = "load", ["module"] = module, ["source"] = source }, cancellationToken);

    /// <summary>Calls <c>setup_{function}(args)</c> of a loaded module; returns the id its rounds run under.</summary>
    public async Task<string> SetupAsync(string module, ReferenceCase reference, CancellationToken cancellationToken)
    {
        var id = $"{module}.{reference.Function}.{Interlocked.Increment(ref nextId)}";
        await CallAsync(new JsonObject
        {
            ["op"] = "setup",
            ["id"] = id,
            ["module"] = module,
            ["function"] = reference.Function,
            ["args"] = reference.Arguments.DeepClone(),
        }, cancellationToken);
        return id;
    }

    /// <summary>Runs one round of a set-up case; returns the seconds it measured.</summary>
    public async Task<double> RunRoundAsync(string id, CancellationToken cancellationToken)
    {
        var answer = await CallAsync(new JsonObject { ["op"] = "round", ["id"] = id }, cancellationToken);
        return answer["seconds"]?.GetValue<double>() ?? throw new PythonReferenceException("the reference round answered without 'seconds'");
    }

    public Task DropAsync(string id, CancellationToken cancellationToken) =>
        CallAsync(new JsonObject { ["op"] = "drop", ["id"] = id }, cancellationToken);

    /// <summary>Sends one request line and reads one answer line. A failed answer throws with Python's traceback.</summary>
    public async Task<JsonObject> CallAsync(JsonObject request, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        string? line;
        try
        {
            await process.StandardInput.WriteLineAsync(request.ToJsonString().AsMemory(), cancellationToken);
            await process.StandardInput.FlushAsync(cancellationToken);
            line = await process.StandardOutput.ReadLineAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The reference may be mid-round; a half-finished exchange cannot be resumed.
            Kill();
            throw;
        }
        catch (IOException e)
        {
            throw Died($"the reference process stopped ({e.Message})");
        }
        if (line is null) throw Died("the reference process exited");

        JsonObject answer;
        try
        {
            answer = JsonNode.Parse(line) as JsonObject ?? throw new PythonReferenceException($"the reference answered a non-object: {Shorten(line)}");
        }
        catch (JsonException)
        {
            throw new PythonReferenceException($"the reference answered a line that is not JSON: {Shorten(line)}");
        }
        if (answer["ok"]?.GetValue<bool>() == true) return answer;
        if (answer["missing_torch"]?.GetValue<bool>() == true)
            throw new PythonReferenceException($"{PythonPath} cannot import torch; install the PyTorch reference: {InstallCommand}");
        var op = request["op"]?.GetValue<string>() ?? "?";
        throw new PythonReferenceException($"the PyTorch reference failed in '{op}': {answer["error"]?.GetValue<string>() ?? "no message"}");
    }

    private PythonReferenceException Died(string what)
    {
        // Give the stderr reader a moment to collect the last words (a traceback, a missing module).
        process.WaitForExit(TimeSpan.FromSeconds(2));
        var tail = StderrTail();
        var missingTorch = tail.Contains("No module named 'torch'", StringComparison.Ordinal);
        return new PythonReferenceException(missingTorch
            ? $"{PythonPath} cannot import torch; install the PyTorch reference: {InstallCommand}"
            : $"{what}; stderr: {(tail.Length == 0 ? "(empty)" : tail)}");
    }

    private void AppendStderr(string? line)
    {
        if (line is null) return;
        lock (stderrTail)
        {
            stderrTail.AppendLine(line);
            if (stderrTail.Length > StderrTailChars) stderrTail.Remove(0, stderrTail.Length - StderrTailChars);
        }
    }

    /// <summary>The last few thousand characters the reference wrote to stderr (warnings, tracebacks).</summary>
    public string StderrTail()
    {
        lock (stderrTail) return stderrTail.ToString().Trim();
    }

    private static string Shorten(string s) => s.Length <= 200 ? s : s[..200] + "…";

    private static string ReadHarness()
    {
        using var stream = typeof(PythonReferenceSession).Assembly.GetManifestResourceStream("PrefOnline.Benchmarks.reference_harness.py")
                           ?? throw new InvalidOperationException("reference_harness.py is not embedded in the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private void Kill()
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (disposed) return;
        disposed = true;
        try
        {
            if (!process.HasExited)
            {
                await process.StandardInput.WriteLineAsync("{\"op\": \"exit\"}");
                await process.StandardInput.FlushAsync();
                process.StandardInput.Close();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await process.WaitForExitAsync(timeout.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            Kill();
        }
        process.Dispose();
    }
}
