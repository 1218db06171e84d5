using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>The worker host's logs into the xunit output (shown when a test fails), and kept for assertions.</summary>
public sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> lines = new();

    /// <summary>Every line logged so far ("Level Category: message").</summary>
    public IReadOnlyCollection<string> Lines => lines;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Write(string line)
    {
        lines.Enqueue(line);
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test already finished; late background logs have nowhere to go.
        }
    }

    private sealed class Logger(TestOutputLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var name = category[(category.LastIndexOf('.') + 1)..];
            provider.Write($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {name}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
        }
    }
}
