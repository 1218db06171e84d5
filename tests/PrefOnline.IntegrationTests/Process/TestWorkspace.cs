using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// One test's files: a scratch directory under the system temp directory (checkpoints, configuration; deleted
/// at the end) and a log directory beside the test assembly (process-tests/TEST/: every process's output,
/// timelines; kept for reading after a failure). Owns the processes the test starts: disposing the workspace
/// kills whatever still runs, even when the test failed.
/// </summary>
public sealed class TestWorkspace : IAsyncDisposable
{
    private readonly List<ChildProcess> processes = [];
    private readonly ITestOutputHelper output;

    public TestWorkspace(string testName, ITestOutputHelper output)
    {
        this.output = output;
        Scratch = Path.Combine(Path.GetTempPath(), "prefonline-proctests", $"{testName}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(Scratch);
        Logs = Path.Combine(AppContext.BaseDirectory, "process-tests", testName);
        if (Directory.Exists(Logs)) Directory.Delete(Logs, recursive: true);
        Directory.CreateDirectory(Logs);
        Log($"scratch {Scratch}; logs {Logs}");
    }

    public string Scratch { get; }

    public string Logs { get; }

    public string ScratchPath(string name) => Path.Combine(Scratch, name);

    public void Log(string line) => output.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {line}");

    /// <summary>Starts the prefonline binary with <paramref name="arguments"/> (verb first); output goes to logs/NAME.log.</summary>
    public ChildProcess StartPrefOnline(string name, IEnumerable<string> arguments, bool redirectInput = false)
    {
        var (file, prefix) = PrefOnlineBinary.Command;
        return Track(ChildProcess.Start(name, file, [.. prefix, .. arguments], Path.Combine(Logs, name + ".log"), workingDirectory: Scratch, redirectInput: redirectInput));
    }

    public ChildProcess Start(string name, string file, IEnumerable<string> arguments) =>
        Track(ChildProcess.Start(name, file, arguments, Path.Combine(Logs, name + ".log"), workingDirectory: Scratch));

    private ChildProcess Track(ChildProcess process)
    {
        lock (processes) processes.Add(process);
        Log($"started {process.Name} (pid {process.Id})");
        return process;
    }

    /// <summary>Runs a prefonline verb to completion and returns (exit code, stdout+stderr).</summary>
    public async Task<(int ExitCode, string Output)> RunPrefOnlineAsync(string name, TimeSpan timeout, params string[] arguments)
    {
        var process = StartPrefOnline(name, arguments);
        var code = await process.WaitForExitAsync(timeout);
        return (code, string.Join('\n', process.Lines.Select(l => l.Text)));
    }

    /// <summary>A free TCP port on 127.0.0.1 (bound and released: good enough for a test on one machine).</summary>
    public static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        List<ChildProcess> started;
        lock (processes) started = processes.ToList();
        foreach (var process in Enumerable.Reverse(started))
        {
            var running = !process.HasExited;
            await process.DisposeAsync();
            if (running) Log($"stopped {process.Name} (pid {process.Id}) at the end of the test");
        }
        try
        {
            Directory.Delete(Scratch, recursive: true);
        }
        catch (IOException e)
        {
            Log($"could not delete {Scratch}: {e.Message}");
        }
    }
}
