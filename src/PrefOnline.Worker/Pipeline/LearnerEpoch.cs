using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// One run of the learner's pipeline from one checkpoint: offset trackers restored from its offsets,
/// sources subscribed with them (seeking there on every assignment), an intake per input, and the
/// <see cref="LearningLoop"/> that applies what they read to the learning state — role all: prompts → generator →
/// the loop (generation and admission); role learner: rollouts topic → the loop; both: feedback → the loop (labels),
/// whose timers score waiting rollouts and run updates, checkpoints following them. An epoch ends when the worker stops or the
/// learner needs to restart from a checkpoint (rollback, refused update); the next epoch starts afresh
/// from that checkpoint, which is exactly what a process restart would do.
/// </summary>
public sealed class LearnerEpoch
{
    private readonly LearnerPipelineContext context;
    private readonly LearningState state;
    private readonly List<EpochInput> inputs = [];
    private readonly List<(string Name, Task Task)> tasks = [];
    private readonly CancellationTokenSource intakeStop = new();
    private readonly CancellationTokenSource generatorStop = new();
    private readonly CancellationTokenSource stagesStop = new();
    private readonly CancellationTokenSource abort = new();
    private readonly CancellationTokenSource giveUpOutput = new();
    private CancellationTokenRegistration stopRegistration;
    private Task? generatorTask;

    private readonly IReadOnlyList<ResumeOffset> continueFrom;

    /// <param name="continueFrom">
    /// After a rollback or reload: how far the discarded state had read its generation input (prompts in role
    /// all, rollouts in role learner). Those partitions resume there when it is beyond the checkpoint's offset:
    /// prompts the abandoned line answered are not answered again (their rollouts are published; labels for
    /// them still arrive and train the reward model). Feedback always resumes at the checkpoint's offsets, so
    /// the restored state learns every label once (see <see cref="LabelObservationFilter"/>).
    /// </param>
    public LearnerEpoch(LearnerPipelineContext context, LearningState state, Checkpoint checkpoint, bool useCheckpointOffsets, IReadOnlyList<ResumeOffset>? continueFrom = null)
    {
        this.context = context;
        this.state = state;
        Checkpoint = checkpoint;
        UseCheckpointOffsets = useCheckpointOffsets;
        this.continueFrom = continueFrom ?? [];
    }

    public Checkpoint Checkpoint { get; }

    /// <summary>How long after a stop output still waits for the broker: a quarter of the grace period (Worker:ShutdownTimeout).</summary>
    private TimeSpan OutputPatience => context.Settings.Worker.ShutdownTimeout / 4;

    /// <summary>False for the embedded transport's first epoch: a new in-process broker knows nothing of an earlier process's offsets.</summary>
    public bool UseCheckpointOffsets { get; }

    public IReadOnlyList<EpochInput> Inputs => inputs;

    /// <summary>The learning loop (null before the epoch starts).</summary>
    public LearningLoop? Loop { get; private set; }

    public GeneratorStage? Generator { get; private set; }

    /// <summary>
    /// Starts every stage and runs until the learning loop ends the epoch. A failing stage is fatal (its exception is
    /// rethrown), and so is one that ends on its own before the worker stops: an intake or a loop that quietly
    /// ended would leave a worker that looks healthy and learns nothing.
    /// </summary>
    public async Task<EpochEnd> RunAsync(CancellationToken stopping)
    {
        stopRegistration = stopping.Register(() => giveUpOutput.CancelAfter(OutputPatience));
        Start();
        var ended = Loop!.Ended;
        var pending = tasks.Select(t => t.Task).Append(ended).ToList();
        while (true)
        {
            var finished = await Task.WhenAny(pending).ConfigureAwait(false);
            if (finished == ended) return await ended.ConfigureAwait(false);
            var name = tasks.First(t => t.Task == finished).Name;
            if (finished.IsFaulted)
            {
                context.Logger.LogCritical("Pipeline stage {Stage} failed", name);
                await finished.ConfigureAwait(false); // rethrows
            }
            if (!stopping.IsCancellationRequested)
                throw new InvalidOperationException($"pipeline stage {name} ended on its own ({finished.Status}) while the worker was running");
            pending.Remove(finished);
        }

        void Start()
        {
            var topics = context.Transport.Topics;
            var settings = context.Settings;
            var group = context.ConsumerGroup;
            var feedbackInput = Subscribe("feedback", $"{group}.feedback", topics.Feedback, continues: false);
            var feedbackIntake = Intake(feedbackInput, context.FeedbackValidator, context.Feedback.QueueCapacity);
            var followUp = new UpdateFollowUp(settings.Worker, state, inputs, context.Coordinator, context.Guardrail, context.Metrics, context.Status,
                context.Checkpoints, context.Logger, context.Time, giveUpOutput.Token);

            if (context.Role == WorkerRole.All)
            {
                var promptInput = Subscribe("prompts", $"{group}.generators", topics.Prompts, continues: true);
                var promptIntake = Intake(promptInput, context.PromptValidator, settings.Generation.QueueCapacity);
                Loop = NewLoop(rollouts: null, promptInput.Tracker);
                var budget = new SampleBudget(state, settings.Learner.MaxSamplesAhead, settings.Scoring.MaxPendingRollouts, () => context.Guardrail.UpdatesPaused);
                Generator = new GeneratorStage(promptIntake.Records, settings.Generation, Loop, context.Transport.Sink, topics.Rollouts,
                    Loop.AdmitGeneratedAsync, budget.WaitForRoomAsync, context.Metrics, context.Logger, context.Time);
                generatorTask = Generator.RunAsync(generatorStop.Token, abort.Token);
                tasks.Add(("generator", generatorTask));
            }
            else
            {
                var rolloutInput = Subscribe("rollouts", $"{group}.rollouts", topics.Rollouts, continues: true);
                var rolloutIntake = Intake(rolloutInput, context.RolloutValidator, settings.Scoring.RewardBatchSize * 2);
                Loop = NewLoop((rolloutIntake.Records, rolloutInput.Tracker), prompts: null);
            }
            tasks.Add(("learning-loop", Loop.RunAsync(stopping, stagesStop.Token)));

            LearningLoop NewLoop((ChannelReader<ValidatedRecord>, OffsetTracker)? rollouts, OffsetTracker? prompts) =>
                new(state, context.Thread, (feedbackIntake.Records, feedbackInput.Tracker), rollouts, prompts, context.Feedback, settings.Scoring, followUp,
                    context.Status, context.Logger, context.Time);
        }
    }

    /// <summary>
    /// Stops the epoch in order: intake first (no new records enter), the generator after the batch in flight
    /// (the learning loop still admits it), then the learning loop (a label batch that has not started never runs;
    /// an update in flight finishes with its checkpoint); with <paramref name="finalCheckpoint"/> a last checkpoint holds everything absorbed
    /// and its offsets are committed; finally the sources leave their groups.
    /// </summary>
    public async Task StopAsync(bool finalCheckpoint, CancellationToken cancellationToken)
    {
        using var hardStop = cancellationToken.Register(abort.Cancel);
        // Output the broker does not take within the patience (an outage) is given up rather than holding the stop
        // until the grace period runs out with no final checkpoint: the generator's batch in flight (its prompts
        // are not absorbed: read again after a restart), the learner's last policy event and commits.
        abort.CancelAfter(OutputPatience);
        giveUpOutput.CancelAfter(OutputPatience);
        await stopRegistration.DisposeAsync().ConfigureAwait(false);
        try
        {
            await intakeStop.CancelAsync().ConfigureAwait(false);
            await generatorStop.CancelAsync().ConfigureAwait(false);
            if (generatorTask is not null) await Quietly("generator", generatorTask).ConfigureAwait(false);
            await stagesStop.CancelAsync().ConfigureAwait(false);
            foreach (var (name, task) in tasks) await Quietly(name, task).ConfigureAwait(false);
            if (finalCheckpoint) await FinalCheckpointAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await CloseInputsAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task FinalCheckpointAsync(CancellationToken cancellationToken)
    {
        if (context.Coordinator.Store.Reader.ReadRollbackRequest().Request is not null)
        {
            context.Logger.LogWarning("An operator rollback is pending: no final checkpoint (the next start applies the rollback and resumes from there)");
            return;
        }
        try
        {
            var checkpoint = await context.Coordinator.WriteAsync(state, inputs, policyChanged: false, new Dictionary<string, double>(), publish: false, cancellationToken).ConfigureAwait(false);
            context.Logger.LogInformation("Final checkpoint {Checkpoint} written; offsets committed", checkpoint.ToString());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing is lost: the offsets stay at the last durable checkpoint, and the next start reads the rest again.
            context.Logger.LogError("Final checkpoint failed{Full}: {Error}; the next start resumes from {Checkpoint} and reads what came after it again",
                CheckpointRetry.IsOutOfSpace(e) ? " (the checkpoint volume is full)" : "", e.Message, context.Coordinator.Store.Reader.ReadPointers().Latest is { } v ? CheckpointVersion.DirectoryName(v) : "the last checkpoint");
        }
    }

    /// <summary>Sources leave their consumer groups (a replacement pod gets the partitions at once, not after session.timeout).</summary>
    private async Task CloseInputsAsync(CancellationToken cancellationToken)
    {
        foreach (var input in inputs)
        {
            try
            {
                await input.Source.CloseAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StreamingException or OperationCanceledException)
            {
                context.Logger.LogWarning("Closing the {Input} source: {Error}", input.Name, e.Message);
            }
            await input.Source.DisposeAsync().ConfigureAwait(false);
        }
    }

    private EpochInput Subscribe(string name, string groupId, string topic, bool continues)
    {
        var restored = new Dictionary<TopicPartitionId, long>();
        if (UseCheckpointOffsets && Checkpoint.Offsets.TryGetValue(topic, out var partitions))
            foreach (var (partition, offset) in partitions) restored[new TopicPartitionId(topic, partition)] = offset;
        if (continues)
        {
            foreach (var reached in continueFrom.Where(o => o.Partition.Topic == topic))
                restored[reached.Partition] = Math.Max(restored.GetValueOrDefault(reached.Partition), reached.NextOffset);
        }
        var tracker = new OffsetTracker(restored.Select(r => new ResumeOffset(r.Key, r.Value)));
        var source = context.Transport.Subscribe(groupId, [topic], new CheckpointResume(tracker));
        var input = new EpochInput(name, source, tracker);
        inputs.Add(input);
        return input;
    }

    private IntakeStage Intake(EpochInput input, Streaming.Validation.RecordValidator validator, int capacity)
    {
        var intake = new ValidatingIntake(input.Source, validator, context.DeadLetters, input.Tracker, context.StreamingMetrics, context.Logger);
        var stage = new IntakeStage(input.Name, intake, capacity, context.IntakeBufferBytes, context.Logger);
        tasks.Add(($"{input.Name}-intake", stage.RunAsync(intakeStop.Token)));
        return stage;
    }

    /// <summary>Waits for a stage during a stop; its failure is logged, not rethrown, so the rest of the stop still runs.</summary>
    private async Task Quietly(string name, Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            context.Logger.LogError(e, "Pipeline stage {Stage} failed while stopping", name);
        }
    }
}
