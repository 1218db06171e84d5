using System.Text;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Intake;

public sealed class ValidatingIntakeTests
{
    [Fact]
    public async Task Valid_records_are_yielded_bad_ones_dead_lettered_and_offsets_stay_exact()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("prompts", 1);
        broker.CreateTopic("dlq", 1);
        var sink = broker.CreateSink();
        var inputs = new[]
        {
            """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""",
            """{"schema":"prefonline.prompt.v1","id":"p-2"}""",
            """{"schema":"prefonline.prompt.v1","id":"p-3","prompt":"c"}""",
            "not json",
        };
        foreach (var input in inputs) await sink.ProduceAsync(new OutgoingRecord("prompts", null, Encoding.UTF8.GetBytes(input)), CancellationToken.None);

        using var metrics = new StreamingMetrics();
        var tracker = new OffsetTracker();
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "worker", Topics = { "prompts" } }, tracker);
        var intake = new ValidatingIntake(source, new RecordValidator(new ValidationLimits(), SchemaNames.PromptTopic), new DeadLetterRouter(sink, "dlq", metrics), tracker, metrics);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var yielded = new List<ValidatedRecord>();
        var reading = Task.Run(async () =>
        {
            await foreach (var item in intake.ReadAllAsync(cts.Token))
            {
                lock (yielded) yielded.Add(item);
                if (yielded.Count == 1) Assert.Equal(0, tracker.GetResumeOffset(new TopicPartitionId("prompts", 0))); // not completed yet
                tracker.Complete(item.Source);
            }
        });
        await Eventually.TrueAsync(() => tracker.GetResumeOffset(new TopicPartitionId("prompts", 0)) == 4, TimeSpan.FromSeconds(10), "all four records absorbed or dead-lettered");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        Assert.Equal(["p-1", "p-3"], yielded.Select(v => ((PromptRecord)v.Record).Id));
        Assert.Equal(1, metrics.DeadLetterCount("prompts", ReasonCodes.InvalidJson));
        Assert.Equal(2, metrics.MessageCount("prompts", StreamingMetrics.ResultOk));
        Assert.Equal(1, metrics.DeadLetterCount("prompts", ReasonCodes.MissingField));
        Assert.Equal(2, metrics.MessageCount("prompts", StreamingMetrics.ResultDeadLetter));
        Assert.Equal(4, broker.GetWatermarks(new TopicPartitionId("prompts", 0)).End);
        Assert.Equal(2, broker.GetWatermarks(new TopicPartitionId("dlq", 0)).End);
    }

    [Fact]
    public async Task Replays_of_absorbed_records_are_skipped_before_validation()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("prompts", 1);
        broker.CreateTopic("dlq", 1);
        var sink = broker.CreateSink();
        for (var i = 0; i < 5; i++) await sink.ProduceAsync(new OutgoingRecord("prompts", null, Encoding.UTF8.GetBytes($$"""{"schema":"prefonline.prompt.v1","id":"p-{{i}}","prompt":"x"}""")), CancellationToken.None);

        using var metrics = new StreamingMetrics();
        // The checkpoint absorbed offsets 0..2, but this source re-reads from 0 (e.g. provider knew nothing).
        var tracker = new OffsetTracker([new ResumeOffset("prompts", 0, 3)]);
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "worker", Topics = { "prompts" } }, new OffsetTracker());
        var intake = new ValidatingIntake(source, new RecordValidator(new ValidationLimits(), SchemaNames.PromptTopic), new DeadLetterRouter(sink, "dlq", metrics), tracker, metrics);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var ids = new List<string>();
        await foreach (var item in intake.ReadAllAsync(cts.Token))
        {
            ids.Add(((PromptRecord)item.Record).Id);
            tracker.Complete(item.Source);
            if (ids.Count == 2) break;
        }
        Assert.Equal(["p-3", "p-4"], ids);
        Assert.Equal(3, intake.Replays);
        Assert.Equal(5, tracker.GetResumeOffset(new TopicPartitionId("prompts", 0)));
    }

    [Fact]
    public async Task A_validator_fault_dead_letters_the_record_as_validator_error_logs_the_exception_type_and_the_intake_goes_on()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("prompts", 1);
        broker.CreateTopic("dlq", 1);
        var sink = broker.CreateSink();
        foreach (var id in new[] { "p-1", "p-2" })
            await sink.ProduceAsync(new OutgoingRecord("prompts", null, Encoding.UTF8.GetBytes($$"""{"schema":"prefonline.prompt.v1","id":"{{id}}","prompt":"a"}""")), CancellationToken.None);

        using var metrics = new StreamingMetrics();
        var tracker = new OffsetTracker();
        var log = new ListLogger();
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "worker", Topics = { "prompts" } }, tracker);
        // The duplicate window's clock fails once: an exception inside validation that no check anticipates.
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PromptTopic, new ClockFailingOnce());
        var intake = new ValidatingIntake(source, validator, new DeadLetterRouter(sink, "dlq", metrics), tracker, metrics, log);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var yielded = new List<string>();
        await foreach (var item in intake.ReadAllAsync(cts.Token))
        {
            yielded.Add(((PromptRecord)item.Record).Id);
            tracker.Complete(item.Source);
            break;
        }

        Assert.Equal(["p-2"], yielded);
        Assert.Equal(2, tracker.GetResumeOffset(new TopicPartitionId("prompts", 0)));
        Assert.Equal(1, metrics.DeadLetterCount("prompts", ReasonCodes.ValidatorError));
        await using var dlq = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "inspect", Topics = { "dlq" } }, new OffsetTracker());
        var letter = (await Eventually.ReadAsync(dlq.Records, 1, TimeSpan.FromSeconds(5))).Single();
        Assert.Equal(ReasonCodes.ValidatorError, letter.Headers.Last(h => h.Name == DeadLetterHeaders.Reason).ValueAsString());
        Assert.Contains("InvalidOperationException", letter.Headers.Last(h => h.Name == DeadLetterHeaders.Detail).ValueAsString());
        var error = Assert.Single(log.Entries, e => e.Level == LogLevel.Error);
        Assert.Contains("System.InvalidOperationException", error.Message);
        Assert.IsType<InvalidOperationException>(error.Exception);
    }

    [Fact]
    public async Task A_skipping_intake_counts_and_logs_refused_records_without_dead_letters()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("policy", 1);
        var sink = broker.CreateSink();
        var sha = new string('a', 64);
        foreach (var input in new[] { """{"\udc00":0}""", $$$"""{"schema":"prefonline.policy.v1","version":3,"uri":"file:///v3","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{}}""", "not json" })
            await sink.ProduceAsync(new OutgoingRecord("policy", null, Encoding.UTF8.GetBytes(input)), CancellationToken.None);

        using var metrics = new StreamingMetrics();
        var tracker = new OffsetTracker();
        var log = new ListLogger();
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "generator", Topics = { "policy" } }, tracker);
        var intake = ValidatingIntake.SkippingRefused(source, new RecordValidator(new ValidationLimits(), SchemaNames.PolicyTopic), tracker, metrics, log);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var versions = new List<long>();
        var reading = Task.Run(async () =>
        {
            await foreach (var item in intake.ReadAllAsync(cts.Token))
            {
                lock (versions) versions.Add(((PolicyEvent)item.Record).Version);
                tracker.Complete(item.Source);
            }
        });
        await Eventually.TrueAsync(() => tracker.GetResumeOffset(new TopicPartitionId("policy", 0)) == 3, TimeSpan.FromSeconds(10), "all three records absorbed or skipped");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);

        Assert.Equal([3L], versions);
        Assert.Equal(1, metrics.SkippedCount("policy", ReasonCodes.LoneSurrogate));
        Assert.Equal(1, metrics.SkippedCount("policy", ReasonCodes.InvalidJson));
        Assert.Equal(2, metrics.MessageCount("policy", StreamingMetrics.ResultSkipped));
        Assert.Equal(0, metrics.MessageCount("policy", StreamingMetrics.ResultDeadLetter));
        Assert.Empty(metrics.DeadLetterCounts());
        Assert.Equal(2, log.Entries.Count(e => e.Level == LogLevel.Warning && e.Message.Contains("policy[0]@") && e.Message.Contains("not dead-lettered")));
    }

    /// <summary>Timestamps work except the first, which throws.</summary>
    private sealed class ClockFailingOnce : TimeProvider
    {
        private int calls;

        public override long GetTimestamp() => Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("the test clock failed") : base.GetTimestamp();
    }

    /// <summary>Keeps every log entry (level, formatted message, exception).</summary>
    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message, Exception? Exception)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries) Entries.Add((logLevel, formatter(state, exception), exception));
        }
    }
}
