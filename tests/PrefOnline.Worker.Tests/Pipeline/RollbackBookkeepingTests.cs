using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Learning.Sampling;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Tests.Observability;

namespace PrefOnline.Worker.Tests.Pipeline;

/// <summary>
/// The small pieces the learner keeps across a rollback (issue 11 items 5 and 9): rollout ids that never repeat,
/// the guardrail's label filter after a rollback, and the duplicate-id windows saved in a checkpoint.
/// </summary>
public sealed class RollbackBookkeepingTests
{
    private static readonly TopicPartitionId Feedback0 = new("prefonline.feedback", 0);

    [Fact]
    public async Task A_new_generator_stage_after_a_rollback_never_reuses_a_rollout_id_of_the_abandoned_line()
    {
        // Issue 11 item 9: after the rollback the new epoch's stage numbered its batches from 1 again, so the same
        // prompt under the same version got `rt-p2.v1.s0.3c14221` a second time, and users' labels of the new
        // completions were dead-lettered as duplicate-id.
        using var meters = new IsolatedMeter();
        using var metrics = new PrefOnlineMetrics(meters.Create());
        var produced = new List<RolloutRecord>();
        foreach (var epoch in new[] { "abandoned line", "after the rollback" })
        {
            var prompts = Channel.CreateUnbounded<ValidatedRecord>();
            for (var i = 0; i < 3; i++)
            {
                var prompt = new PromptRecord($"rt-p{i}", "a:");
                await prompts.Writer.WriteAsync(new ValidatedRecord(prompt, new ConsumedRecord(new TopicPartitionId("prefonline.prompts", 0), i, null, RecordSerializer.Serialize(prompt), DateTimeOffset.UnixEpoch)));
            }
            prompts.Writer.Complete();
            var sink = new CollectingSink();
            var stage = new GeneratorStage(prompts.Reader, new GenerationOptions { SamplesPerPrompt = 2, MaxPromptsPerBatch = 1, BatchWindow = TimeSpan.Zero }, new FixedGenerator(version: 1),
                sink, "prefonline.rollouts", (_, _) => Task.CompletedTask, (_, _) => Task.CompletedTask, metrics, NullLogger.Instance, TimeProvider.System);
            await stage.RunAsync(CancellationToken.None, CancellationToken.None);
            Assert.Equal(3, stage.Batches); // each stage counts its own batches from 1
            produced.AddRange(sink.Records.Select(r => (RolloutRecord)new RecordValidator(new ValidationLimits(), SchemaNames.RolloutTopic).Validate(r.Value).Record!));
        }
        Assert.Equal(12, produced.Count);
        Assert.Equal(12, produced.Select(r => r.Id).Distinct().Count());
        Assert.All(produced, r => Assert.Matches(@"^rt-p\d\.v1\.s[01]\.[0-9a-f]+$", r.Id));
        Assert.All(produced, r => Assert.True(GeneratorStage.TryParseRolloutVersion(r.Id, out var v) && v == 1));
    }

    [Fact]
    public void After_a_rollback_replayed_labels_and_labels_of_abandoned_versions_are_not_judged_but_new_ones_are()
    {
        var filter = new LabelObservationFilter();
        Assert.True(filter.ShouldObserve(Rating(5, "p.v7.s0.ab12cd341")));

        // The abandoned state had absorbed feedback[0] up to offset 100 and served v8..v12; restored v7.
        filter.Extend([new ResumeOffset(Feedback0, 100)], abandonedFrom: 8, abandonedTo: 12);
        Assert.False(filter.ShouldObserve(Rating(99, "p.v7.s0.ab12cd341")));  // a replay: judged once already
        Assert.True(filter.ShouldObserve(Rating(100, "p.v7.s0.ab12cd342")));  // new, rates the restored policy
        Assert.False(filter.ShouldObserve(Rating(101, "p.v9.s1.ab12cd343"))); // new, but rates an abandoned version
        Assert.True(filter.ShouldObserve(Rating(102, "p.v13.s1.ab12cd344"))); // the new line's versions
        Assert.True(filter.ShouldObserve(Rating(103, rolloutId: null)));      // nothing says which policy: judged
        Assert.True(filter.ShouldObserve(Rating(104, "external-generator-id-v9")));
        Assert.False(filter.ShouldObserve(Preference(105, "p.v7.s0.aa1", "p.v10.s1.aa2")));
        Assert.True(filter.ShouldObserve(Preference(106, "p.v13.s0.aa1", "p.v13.s1.aa2")));
        Assert.True(filter.ShouldObserve(new ValidatedRecord(new RatingRecord("x", "p", "c", 1), Consumed(new TopicPartitionId("prefonline.feedback", 1), 0))));

        // The model-reward detector waits while the replay lasts: until the feedback tracker passed every boundary.
        Assert.True(filter.ReplayPending);
        var tracker = new OffsetTracker([new ResumeOffset(Feedback0, 99)]);
        filter.Progress(tracker);
        Assert.True(filter.ReplayPending);
        Assert.True(tracker.MarkAbsorbed(Consumed(Feedback0, 99)));
        filter.Progress(tracker);
        Assert.False(filter.ReplayPending);
        Assert.False(filter.ShouldObserve(Rating(101, "p.v9.s1.ab12cd343"))); // abandoned versions stay recognised
        filter.Extend([new ResumeOffset(Feedback0, 100)], abandonedFrom: 8, abandonedTo: 12);

        // Saved with the state in worker.json and read back the same.
        var restored = LabelObservationFilter.FromJson(System.Text.Json.Nodes.JsonNode.Parse(filter.ToJson().ToJsonString()));
        Assert.Equal(filter.ReplayUntil, restored.ReplayUntil);
        Assert.Equal(filter.AbandonedVersions, restored.AbandonedVersions);
        Assert.Throws<InvalidDataException>(() => LabelObservationFilter.FromJson(System.Text.Json.Nodes.JsonNode.Parse("""{"replay_until":{"t":{"x":1}}}""")));
        Assert.Empty(LabelObservationFilter.FromJson(null).AbandonedVersions);
    }

    [Fact]
    public void The_saved_duplicate_windows_hold_what_the_checkpoint_absorbed_and_read_back_exactly()
    {
        var window = new DuplicateIdWindow(100, TimeSpan.FromHours(1));
        Assert.True(window.TryRegister("absorbed", new RecordPosition(Feedback0, 7), out _));
        Assert.True(window.TryRegister("read-ahead", new RecordPosition(Feedback0, 12), out _)); // beyond the checkpoint: read again after a restart
        Assert.True(window.TryRegister("no-position", null, out _));
        Assert.True(window.TryRegister("other-partition", new RecordPosition(new TopicPartitionId("prefonline.feedback", 3), 0), out _)); // never absorbed from

        var path = Path.Combine(Path.GetTempPath(), $"duplicate-ids-{Guid.NewGuid():N}.bin");
        try
        {
            DuplicateWindowFile.Write(path, [("prefonline.feedback", window)], [new ResumeOffset(Feedback0, 10)]);
            using var stream = File.OpenRead(path);
            var saved = DuplicateWindowFile.Read(stream);
            var entries = saved["prefonline.feedback"];
            Assert.Equal(["absorbed", "no-position"], entries.Select(e => e.Id));
            Assert.Equal(new RecordPosition(Feedback0, 7), entries[0].Position);
            Assert.Null(entries[1].Position);
            Assert.Equal(window.Snapshot()[0].SeenAt.ToUnixTimeMilliseconds(), entries[0].SeenAt.ToUnixTimeMilliseconds());
        }
        finally
        {
            File.Delete(path);
        }
        using var garbage = new MemoryStream(Encoding.UTF8.GetBytes("not a window file at all"));
        Assert.Throws<InvalidDataException>(() => DuplicateWindowFile.Read(garbage));
    }

    private static ValidatedRecord Rating(long offset, string? rolloutId) =>
        new(new RatingRecord($"l{offset}", "p", "c", 1, rolloutId), Consumed(Feedback0, offset));

    private static ValidatedRecord Preference(long offset, string chosen, string rejected) =>
        new(new PreferenceRecord($"l{offset}", "p", "a", "b", new PreferenceRolloutIds(chosen, rejected)), Consumed(Feedback0, offset));

    private static ConsumedRecord Consumed(TopicPartitionId partition, long offset) => new(partition, offset, null, [], DateTimeOffset.UnixEpoch);

    private sealed class FixedGenerator(long version) : IRolloutGenerator
    {
        public Task<GeneratedBatch?> GenerateAsync(IReadOnlyList<PromptWork> prompts, SamplingOptions options, CancellationToken cancellationToken)
        {
            var generated = prompts.Select((p, i) => new GeneratedPrompt(p, Enumerable.Range(0, options.SamplesPerPrompt).Select(k => new SampledCompletion
            {
                PromptIndex = i, SampleIndex = k, PromptTokens = [1], PromptTruncated = false, Tokens = [2], Text = "x", PolicyLogProbs = [-1f], SamplerLogProbs = [-1f],
                FinishReason = FinishReason.EndOfSequence, PolicyVersion = version, Seed = 1,
            }).ToList(), [])).ToList();
            return Task.FromResult<GeneratedBatch?>(new GeneratedBatch(generated, version, 0, DateTimeOffset.UnixEpoch));
        }
    }

    private sealed class CollectingSink : IRecordSink
    {
        public List<OutgoingRecord> Records { get; } = [];

        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
        {
            lock (Records) Records.Add(record);
            return Task.FromResult(new DeliveredRecord(new TopicPartitionId(record.Topic, 0), Records.Count));
        }

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
