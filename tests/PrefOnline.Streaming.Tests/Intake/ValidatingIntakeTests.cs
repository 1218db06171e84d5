using System.Text;
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
}
