using System.Diagnostics;
using OsProcess = System.Diagnostics.Process;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// A program these tests start as a separate OS process: stdout and stderr are captured line by line with
/// their arrival time (for waits and timelines) and copied to a log file; <see cref="DisposeAsync"/> kills
/// it (and its children) if it is still running, whatever happened in the test.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly OsProcess process;
    private readonly List<OutputLine> lines = [];
    private readonly StreamWriter log;
    private readonly object gate = new();

    private ChildProcess(string name, OsProcess process, string logPath)
    {
        Name = name;
        this.process = process;
        LogPath = logPath;
        log = new StreamWriter(logPath, append: true) { AutoFlush = true };
    }

    public string Name { get; }

    public string LogPath { get; }

    public int Id { get; private set; }

    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    public StreamWriter StandardInput => process.StandardInput;

    public static ChildProcess Start(string name, string file, IEnumerable<string> arguments, string logPath,
        IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null, bool redirectInput = false)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(logPath)!,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>()) start.Environment[key] = value;
        // Settings of the developer's shell must not leak into the worker under test.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("PREFONLINE__", StringComparison.Ordinal) && environment?.ContainsKey(k) != true).ToList())
            start.Environment.Remove(key);

        var os = new OsProcess { StartInfo = start, EnableRaisingEvents = true };
        var child = new ChildProcess(name, os, logPath);
        os.OutputDataReceived += (_, e) => child.Add("out", e.Data);
        os.ErrorDataReceived += (_, e) => child.Add("err", e.Data);
        child.log.WriteLine($"# {DateTimeOffset.UtcNow:O} start: {file} {string.Join(' ', start.ArgumentList)}");
        if (!os.Start()) throw new InvalidOperationException($"could not start {name}: {file}");
        child.Id = os.Id;
        os.BeginOutputReadLine();
        os.BeginErrorReadLine();
        return child;
    }

    private void Add(string stream, string? text)
    {
        if (text is null) return;
        var line = new OutputLine(DateTimeOffset.UtcNow, stream, text);
        lock (gate)
        {
            lines.Add(line);
            log.WriteLine($"{line.At:HH:mm:ss.fff} {stream} {text}");
        }
    }

    public IReadOnlyList<OutputLine> Lines
    {
        get
        {
            lock (gate) return lines.ToList();
        }
    }

    /// <summary>The first line (stdout or stderr) containing <paramref name="text"/>, or null.</summary>
    public OutputLine? FindLine(string text, int skip = 0) => Lines.Where(l => l.Text.Contains(text, StringComparison.Ordinal)).Skip(skip).FirstOrDefault();

    /// <summary>Waits for a line containing <paramref name="text"/>; fails early (with the output's tail) if the process exits first.</summary>
    public async Task<OutputLine> WaitForLineAsync(string text, TimeSpan timeout)
    {
        OutputLine? found = null;
        await Poll.UntilAsync(() =>
        {
            found = FindLine(text);
            if (found is null && HasExited)
                throw new InvalidOperationException($"{Name} exited with {ExitCode} before printing '{text}'. Output tail:\n{Tail()}");
            return found is not null;
        }, timeout, $"{Name} prints '{text}'", () => Tail());
        return found!;
    }

    /// <summary>SIGTERM, as Kubernetes sends it (through /bin/kill: .NET has no public API to send a signal).</summary>
    public async Task TerminateAsync()
    {
        var kill = File.Exists("/bin/kill") ? "/bin/kill" : "/usr/bin/kill";
        using var sender = OsProcess.Start(new ProcessStartInfo(kill) { ArgumentList = { "-TERM", Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })
                           ?? throw new InvalidOperationException("cannot run kill");
        await sender.WaitForExitAsync();
        if (sender.ExitCode != 0 && !HasExited) throw new InvalidOperationException($"kill -TERM {Id} failed with {sender.ExitCode}");
        lock (gate) log.WriteLine($"# {DateTimeOffset.UtcNow:O} sent SIGTERM");
    }

    /// <summary>SIGKILL (Process.Kill): no shutdown code of the program runs.</summary>
    public async Task KillHardAsync(TimeSpan timeout)
    {
        lock (gate) log.WriteLine($"# {DateTimeOffset.UtcNow:O} sending SIGKILL");
        process.Kill(entireProcessTree: false);
        await WaitForExitAsync(timeout);
    }

    /// <summary>Waits for the exit (and the last output lines); returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} (pid {Id}) did not exit within {timeout}. Output tail:\n{Tail()}");
        }
        lock (gate) log.WriteLine($"# {DateTimeOffset.UtcNow:O} exited with {process.ExitCode}");
        return process.ExitCode;
    }

    public string Tail(int count = 40)
    {
        var all = Lines;
        return $"[{Name}: {LogPath}]\n" + string.Join('\n', all.Skip(Math.Max(0, all.Count - count)).Select(Format));
    }

    /// <summary>Every line containing one of <paramref name="texts"/> (the story of a run that a tail would cut), then the tail.</summary>
    public string Matching(int tail, params string[] texts)
    {
        var matches = Lines.Where(l => texts.Any(t => l.Text.Contains(t, StringComparison.Ordinal))).Select(Format);
        return $"[{Name}: lines with '{string.Join("', '", texts)}']\n" + string.Join('\n', matches) + "\n" + Tail(tail);
    }

    private static string Format(OutputLine line) => $"{line.At:HH:mm:ss.fff} {line.Stream} {line.Text}";

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                lock (gate) log.WriteLine($"# {DateTimeOffset.UtcNow:O} still running at dispose: killed");
                process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await process.WaitForExitAsync(cts.Token);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or stuck in the kernel: nothing more a test can do.
        }
        finally
        {
            process.Dispose();
            lock (gate) log.Dispose();
        }
    }
}
