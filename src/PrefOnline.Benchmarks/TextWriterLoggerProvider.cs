using Microsoft.Extensions.Logging;

namespace PrefOnline.Benchmarks;

/// <summary>A benchmark's in-process worker logs (warnings and worse) to the benchmark's progress writer, not the console.</summary>
public sealed class TextWriterLoggerProvider(TextWriter writer, LogLevel minimum = LogLevel.Warning) : ILoggerProvider
{
    private readonly Lock gate = new();

    private TextWriter Writer => writer;

    private LogLevel Minimum => minimum;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(TextWriterLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider.Minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            lock (provider.gate) provider.Writer.WriteLine($"[bench] worker {logLevel} {category}: {formatter(state, exception)}");
        }
    }
}
