using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// The demo's log as a file (<c>worker.log</c> in <see cref="DemoOptions.OutputDirectory"/>), so the console
/// shows the progress table alone (and warnings and errors): one line per event,
/// <c>HH:mm:ss.fff LEVEL category: message</c>, the exception's text on the lines after it. Appends across
/// restarts; written through at once (a killed demo loses nothing it logged). Thread-safe.
/// </summary>
public sealed class DemoLogFile : ILoggerProvider
{
    public const string FileName = "worker.log";

    private readonly StreamWriter writer;
    private readonly TimeProvider time;
    private readonly Lock gate = new();
    private bool disposed;

    public DemoLogFile(string directory, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        this.time = time ?? throw new ArgumentNullException(nameof(time));
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, FileName));
        writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false)) { AutoFlush = true };
    }

    /// <summary>Full path of the log file.</summary>
    public string Path { get; }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            writer.Dispose();
        }
    }

    private void Write(string category, LogLevel level, string message, Exception? exception)
    {
        var line = new StringBuilder()
            .Append(time.GetLocalNow().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append(' ')
            .Append(Level(level)).Append(' ').Append(category).Append(": ").Append(message);
        if (exception is not null) line.AppendLine().Append(exception);
        lock (gate)
        {
            if (!disposed) writer.WriteLine(line.ToString());
        }
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        _ => "crit",
    };

    private sealed class Logger(DemoLogFile file, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            ArgumentNullException.ThrowIfNull(formatter);
            file.Write(category, logLevel, formatter(state, exception), exception);
        }
    }
}
