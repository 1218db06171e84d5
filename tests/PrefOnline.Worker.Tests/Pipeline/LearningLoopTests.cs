using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Tests.Checkpoints;
using PrefOnline.Worker.Tests.Observability;

namespace PrefOnline.Worker.Tests.Pipeline;

/// <summary>
/// The learning loop (the actor that alone calls the learning state during an epoch) driven directly, with a tiny
/// model and no transport: its channels are written by the test as the intakes would, and its offset trackers show
/// what it absorbed. Updates are never due here (their follow-up is the pipeline's, tested end to end).
/// </summary>
public sealed class LearningLoopTests : IAsyncDisposable
{
    private static readonly TopicPartitionId Feedback0 = new("prefonline.feedback", 0);
    private static readonly TopicPartitionId Rollouts0 = new("prefonline.rollouts", 0);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly TensorThread thread = new("learning-loop-test", intraOpThreads: 1);
    private readonly TempStore directory = new();
    private readonly IsolatedMeter meters = new();
    private readonly Channel<ValidatedRecord> labels = Channel.CreateUnbounded<ValidatedRecord>();
    private readonly Channel<ValidatedRecord> rollouts = Channel.CreateUnbounded<ValidatedRecord>();
    private readonly OffsetTracker labelTracker = new();
    private readonly OffsetTracker rolloutTracker = new();
    private readonly PipelineStatus status = new();
    private readonly CancellationTokenSource stopUpdates = new();
    private readonly CancellationTokenSource stopMessages = new();
    private CheckpointStore? store;
    private StagingArea? staging;
    private PrefOnlineMetrics? metrics;
    private LearningState? state;
    private Task? running;

    [Fact]
    public async Task Rollout_records_are_held_back_while_MaxPendingRollouts_wait_and_taken_again_once_scoring_frees_room()
    {
        // 10 records, room for 4 waiting at a time, at most 3 per work item; each waits 3 s for labels that never come.
        var loop = await StartAsync(new ScoringOptions { MaxPendingRollouts = 4, RewardBatchSize = 3, LabelWait = TimeSpan.FromSeconds(3), Tick = TimeSpan.FromMilliseconds(50) }, roleLearner: true);
        for (var i = 0; i < 10; i++) Write(rollouts, Rollouts0, i, new RolloutRecord($"r{i}", $"p{i}", "a:", $"answer {i}", PolicyVersion: 0, Logprob: -1, RolloutRecord.EndOfSequence), rolloutTracker);

        await UntilAsync(() => state!.PendingSnapshot == 4, "4 rollouts waiting");
        Assert.Equal(6, rollouts.Reader.Count);                                 // held back in the channel (the consumer's buffer), not in memory
        Assert.Equal(4, rolloutTracker.GetResumeOffset(Rollouts0));              // exactly the waiting ones are absorbed
        Assert.Equal(0, loop.RolloutsScored);

        await UntilAsync(() => loop.RolloutsScored == 10, "every rollout scored once its wait ended", () => Assert.True(state!.PendingSnapshot <= 4));
        Assert.Equal(0, rollouts.Reader.Count);
        Assert.Equal(10, rolloutTracker.GetResumeOffset(Rollouts0));
        Assert.Equal(10, status.RolloutsScored);
        Assert.Equal(10, state!.Replay.Count);
    }

    [Fact]
    public async Task After_the_stop_of_updates_labels_are_still_absorbed_and_a_batch_not_started_when_the_loop_stops_never_runs()
    {
        var loop = await StartAsync(new ScoringOptions(), roleLearner: false);

        await stopUpdates.CancelAsync();                                           // the worker stops: the epoch ends
        Assert.Equal(EpochEndKind.Stop, (await loop.Ended.WaitAsync(Patience)).Kind);

        Write(labels, Feedback0, 0, new RatingRecord("l0", "a:", "one", 1.0), labelTracker);
        Write(labels, Feedback0, 1, new RatingRecord("l1", "a:", "two", -1.0), labelTracker);
        await UntilAsync(() => loop.LabelsAbsorbed == 2, "labels absorbed until the loop itself stops");
        Assert.Equal(2, labelTracker.GetResumeOffset(Feedback0));

        // The tensor thread is busy when the next labels arrive: the loop takes them and queues their work item.
        using var gate = new ManualResetEventSlim();
        var busy = thread.RunAsync(() => gate.Wait(Patience));
        for (var i = 2; i < 5; i++) Write(labels, Feedback0, i, new RatingRecord($"l{i}", "a:", "three", 2.0), labelTracker);
        await UntilAsync(() => labels.Reader.Count == 0, "the loop took the batch");
        await stopMessages.CancelAsync();
        gate.Set();
        await busy;
        await running!.WaitAsync(Patience);

        Assert.Equal(2, loop.LabelsAbsorbed);                                     // the queued batch never ran:
        Assert.Equal(2, status.LabelsAbsorbed);
        Assert.Equal(2, labelTracker.GetResumeOffset(Feedback0));                 // its labels are read again from here
        Assert.Equal(2L, state!.Counters.RatingsAbsorbed);

        // A stopped loop answers the demo console with no samples and refuses the generator's batch.
        Assert.Empty(await loop.SampleAsync(["a:"], new SamplingOptions { SamplesPerPrompt = 1, MaxNewTokens = 2 }, CancellationToken.None));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop.AdmitGeneratedAsync(new GeneratedBatch([], 0, 0, DateTimeOffset.UnixEpoch), CancellationToken.None));
    }

    /// <summary>A loop over a fresh tiny state; role learner reads the rollouts channel, role all admits generated batches.</summary>
    private async Task<LearningLoop> StartAsync(ScoringOptions scoring, bool roleLearner)
    {
        var worker = new WorkerOptions { CheckpointInterval = TimeSpan.FromHours(1) };
        var learner = new LearnerOptions { UpdateInterval = TimeSpan.FromHours(1) }; // never due: fewer than UpdateEverySamples (64) rollouts here
        var settings = new LearningStateSettings(worker, new ModelOptions(), new GenerationOptions(), scoring, new ReplayOptions(), learner, new RewardTrainerOptions());
        store = await directory.OpenAsync(time: TimeProvider.System);
        staging = new StagingArea(directory.Root);
        metrics = new PrefOnlineMetrics(meters.Create());
        var guardrail = new Guardrail(new GuardrailOptions());
        var files = new LearningStateFiles(settings, thread, guardrail, metrics, staging, TimeProvider.System, NullLogger.Instance);
        state = await thread.RunAsync(() => files.CreateFresh(PolicyModel.Create(Gpt2Config.Tiny(), seed: 3), ByteTokenizer.Instance));
        var publisher = new PolicyPublisher(new NullSink(), "prefonline.policy", NullLogger.Instance, TimeProvider.System);
        var coordinator = new CheckpointCoordinator(store, files, thread, publisher, metrics, status, "test", NullLogger.Instance, TimeProvider.System);
        var followUp = new UpdateFollowUp(worker, state, [], coordinator, guardrail, metrics, status, new CheckpointReadiness(), NullLogger.Instance, TimeProvider.System, CancellationToken.None);
        var loop = new LearningLoop(state, thread, (labels.Reader, labelTracker), roleLearner ? (rollouts.Reader, rolloutTracker) : null,
            roleLearner ? null : new OffsetTracker(), new FeedbackOptions { MaxBatch = 8 }, scoring, followUp, status, NullLogger.Instance, TimeProvider.System);
        running = loop.RunAsync(stopUpdates.Token, stopMessages.Token);
        return loop;
    }

    /// <summary>What an intake does with a valid record: begun in its input's tracker, then handed to the channel.</summary>
    private static void Write(Channel<ValidatedRecord> channel, TopicPartitionId partition, long offset, StreamRecord record, OffsetTracker tracker)
    {
        var consumed = new ConsumedRecord(partition, offset, null, RecordSerializer.Serialize(record), DateTimeOffset.UtcNow);
        Assert.True(tracker.Begin(consumed));
        Assert.True(channel.Writer.TryWrite(new ValidatedRecord(record, consumed)));
    }

    /// <summary>Waits for <paramref name="condition"/> (checking <paramref name="invariant"/> at every look) or fails after a minute.</summary>
    private async Task UntilAsync(Func<bool> condition, string what, Action? invariant = null)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            invariant?.Invoke();
            if (condition()) return;
            if (running is { IsFaulted: true }) await running;                     // the loop's failure, not a timeout
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopUpdates.CancelAsync();
        await stopMessages.CancelAsync();
        if (running is not null) await running.WaitAsync(Patience);
        if (state is not null) await thread.RunAsync(state.Dispose);
        staging?.Dispose();
        if (store is not null) await store.DisposeAsync();
        metrics?.Dispose();
        meters.Dispose();
        thread.Dispose();
        directory.Dispose();
        stopUpdates.Dispose();
        stopMessages.Dispose();
    }

    private sealed class NullSink : IRecordSink
    {
        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("nothing is published in these tests");

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
