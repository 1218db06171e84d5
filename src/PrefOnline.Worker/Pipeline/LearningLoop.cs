using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Online;
using PrefOnline.Learning.Sampling;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The learning loop of one pipeline epoch, as one actor: while the epoch runs, the only code that calls the
/// <see cref="LearningState"/> on the tensor thread. It takes one message at a time from bounded channels and its
/// own timers, and handles each in one tensor-thread work item:
/// <list type="bullet">
/// <item><b>labels</b> (the feedback intake's channel), up to <see cref="FeedbackOptions.MaxBatch"/> at a time:
///   <see cref="LearningState.AbsorbLabels"/>, which also completes them in the feedback offset tracker. A batch that
///   has not started when the loop is stopped never runs: its labels stay unabsorbed and are read again from the
///   checkpoint's offsets;</item>
/// <item><b>rollout records</b> (role learner, the rollouts intake's channel), up to <see cref="ScoringOptions.RewardBatchSize"/>
///   at a time, join the rollouts waiting for labels and are completed in the rollouts tracker. While
///   <see cref="ScoringOptions.MaxPendingRollouts"/> wait the channel is not read (scoring frees room when their wait
///   ends): the rollouts consumer is held back rather than memory growing;</item>
/// <item><b>the generator's requests</b> (role all, from the <see cref="GeneratorStage"/>): K samples per prompt from the
///   current weights (<see cref="GenerateAsync"/>), then the admission of the published batch, which completes its
///   prompts (<see cref="AdmitGeneratedAsync"/>);</item>
/// <item><b>the scoring tick</b>, every <see cref="ScoringOptions.Tick"/>: the groups whose label wait is over are
///   scored (human labels where joined, the reward model elsewhere) and move into the replay buffer;</item>
/// <item><b>the update check</b>, after every message and at least every 500 ms: an operator's rollback request first;
///   then <see cref="OnlineLearner.DecideUpdate"/> and, when due, the update with the guardrail's verdict in the same
///   work item. What the host does next (checkpoint, commit, policy event, <c>good</c>, the end of the epoch, the
///   periodic checkpoint and commit retries) is <see cref="UpdateFollowUp"/>'s, and runs beside the loop: labels,
///   rollouts and the generator's requests are still handled while a checkpoint is written (a multi-GB one takes
///   seconds), only the next update check waits for it. An update that started finishes, with its checkpoint, before
///   a stop is honoured.</item>
/// </list>
/// Two stops. <c>stopUpdates</c> (the worker stops) ends the update checks: <see cref="Ended"/> becomes
/// <see cref="EpochEnd.Stop"/>, while labels, rollouts and the generator's batch in flight are still handled.
/// <c>stopMessages</c> (<see cref="LearnerEpoch.StopAsync"/>, after intake and the generator have stopped) ends the
/// loop. After a verdict that ends the epoch (a rollback, a refused update) the loop goes on handling messages, no
/// longer checking for updates, until it is stopped.
/// </summary>
public sealed class LearningLoop : IRolloutGenerator
{
    private static readonly TimeSpan UpdateCheck = TimeSpan.FromMilliseconds(500);

    private readonly LearningState state;
    private readonly TensorThread thread;
    private readonly ChannelReader<ValidatedRecord> labels;
    private readonly OffsetTracker labelTracker;
    private readonly ChannelReader<ValidatedRecord>? rollouts;
    private readonly OffsetTracker? rolloutTracker;
    private readonly OffsetTracker? promptTracker;
    private readonly FeedbackOptions feedbackOptions;
    private readonly ScoringOptions scoring;
    private readonly UpdateFollowUp followUp;
    private readonly PipelineStatus status;
    private readonly ILogger logger;
    private readonly TimeProvider time;

    /// <summary>The generator's requests: at most one in flight from the generator, a few from the demo console.</summary>
    private readonly Channel<Request> requests = Channel.CreateBounded<Request>(new BoundedChannelOptions(4) { SingleReader = true });

    private readonly TaskCompletionSource<EpochEnd> ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// What follows the last update (its checkpoint, commit, policy event) while it runs. Meanwhile the loop goes on
    /// handling labels, rollouts and the generator's requests (their work items interleave with the checkpoint's
    /// snapshot on the tensor thread, which is consistent by itself); only the next update check waits for it.
    /// </summary>
    private Task? followUpInFlight;

    /// <param name="labels">The feedback intake's channel and the feedback input's offset tracker.</param>
    /// <param name="rollouts">Role learner: the rollouts intake's channel and tracker (null in role all).</param>
    /// <param name="prompts">Role all: the prompts input's tracker, whose records a generated batch completes (null in role learner).</param>
    public LearningLoop(
        LearningState state,
        TensorThread thread,
        (ChannelReader<ValidatedRecord> Records, OffsetTracker Tracker) labels,
        (ChannelReader<ValidatedRecord> Records, OffsetTracker Tracker)? rollouts,
        OffsetTracker? prompts,
        FeedbackOptions feedbackOptions,
        ScoringOptions scoring,
        UpdateFollowUp followUp,
        PipelineStatus status,
        ILogger logger,
        TimeProvider time)
    {
        this.state = state;
        this.thread = thread;
        (this.labels, labelTracker) = labels;
        this.rollouts = rollouts?.Records;
        rolloutTracker = rollouts?.Tracker;
        promptTracker = prompts;
        this.feedbackOptions = feedbackOptions;
        this.scoring = scoring;
        this.followUp = followUp;
        this.status = status;
        this.logger = logger;
        this.time = time;
    }

    /// <summary>How the epoch ends: set by a verdict that ends it, by an operator's rollback, or by the stop.</summary>
    public Task<EpochEnd> Ended => ended.Task;

    /// <summary>Labels absorbed in this epoch.</summary>
    public long LabelsAbsorbed { get; private set; }

    /// <summary>Rollouts scored in this epoch.</summary>
    public long RolloutsScored { get; private set; }

    private bool UpdatesEnded => ended.Task.IsCompleted;

    private bool RolloutsHaveRoom => state.PendingSnapshot < scoring.MaxPendingRollouts;

    /// <summary>Runs until <paramref name="stopMessages"/>; a failure of a work item or of the host's follow-up is rethrown (fatal).</summary>
    public async Task RunAsync(CancellationToken stopUpdates, CancellationToken stopMessages)
    {
        var nextScoring = time.GetTimestamp() + Ticks(scoring.Tick);
        var nextCheck = time.GetTimestamp();
        try
        {
            while (!stopMessages.IsCancellationRequested)
            {
                if (followUpInFlight is { IsCompleted: true } done)
                {
                    followUpInFlight = null;
                    await done.ConfigureAwait(false); // a failure is fatal, as if it ran inline
                }
                // A stop ends the epoch once the update in flight has its checkpoint.
                if (stopUpdates.IsCancellationRequested && followUpInFlight is null) End(EpochEnd.Stop);
                var handled = false;
                if (requests.Reader.TryRead(out var request))
                {
                    await request.RunAsync(thread).ConfigureAwait(false);
                    handled = true;
                }
                if (Take(labels, feedbackOptions.MaxBatch) is { } labelBatch)
                {
                    await AbsorbLabelsAsync(labelBatch, stopMessages).ConfigureAwait(false);
                    handled = true;
                }
                if (rollouts is not null && RolloutsHaveRoom
                    && Take(rollouts, Math.Min(scoring.RewardBatchSize, scoring.MaxPendingRollouts - state.PendingSnapshot)) is { } rolloutBatch)
                {
                    await thread.RunAsync(() => state.AdmitRolloutRecords(rolloutBatch, rolloutTracker!), stopMessages).ConfigureAwait(false);
                    handled = true;
                }
                if (time.GetTimestamp() >= nextScoring)
                {
                    nextScoring = time.GetTimestamp() + Ticks(scoring.Tick);
                    if (state.PendingSnapshot > 0) await ScoreAsync(stopMessages).ConfigureAwait(false);
                }
                if (!UpdatesEnded && followUpInFlight is null && (handled || time.GetTimestamp() >= nextCheck))
                {
                    await CheckUpdateAsync(stopUpdates).ConfigureAwait(false);
                    nextCheck = time.GetTimestamp() + Ticks(UpdateCheck);
                }
                // Once updates have ended only the scoring tick and messages wake the loop (the update check's time stays behind).
                // While an update's follow-up runs, its end wakes the loop for the next check.
                if (!handled) await WaitForWorkAsync(UpdatesEnded || followUpInFlight is not null ? nextScoring : Math.Min(nextScoring, nextCheck), stopUpdates, stopMessages).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopMessages.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            ended.TrySetException(e);
            throw;
        }
        finally
        {
            try
            {
                // An update that started finishes with its checkpoint before the loop ends, however it ends.
                if (followUpInFlight is { } pending) await pending.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                ended.TrySetException(e);
                throw;
            }
            finally
            {
                End(EpochEnd.Stop);
                requests.Writer.TryComplete();
                while (requests.Reader.TryRead(out var left)) left.Abandon();
            }
        }
    }

    /// <summary>Role all: K samples per prompt from the learning state's own weights; null while it may not be sampled (quiesced).</summary>
    public Task<GeneratedBatch?> GenerateAsync(IReadOnlyList<PromptWork> work, SamplingOptions options, CancellationToken cancellationToken) =>
        AskAsync(() =>
        {
            var completions = state.Generate(work.Select(p => p.Prompt.Prompt).ToList(), options, cancellationToken);
            if (completions.Count == 0) return null;
            var k = options.SamplesPerPrompt;
            var generated = work.Select((p, i) => new GeneratedPrompt(p, completions.Skip(i * k).Take(k).ToList(), [])).ToList();
            return (GeneratedBatch?)new GeneratedBatch(generated, state.PolicyVersion, state.UpdateCount, time.GetUtcNow());
        }, cancellationToken);

    /// <summary>
    /// Role all: a published batch joins the rollouts waiting for labels and its prompts are completed. Runs to the
    /// end once it is the loop's turn (its rollouts are on the topic: the prompts must count as absorbed with them);
    /// dropped, prompts unabsorbed, when the state was refused meanwhile.
    /// </summary>
    public Task AdmitGeneratedAsync(GeneratedBatch batch, CancellationToken cancellationToken) =>
        AskAsync(() => state.AdmitGenerated(batch, promptTracker ?? throw new InvalidOperationException("only role all admits generated batches")), CancellationToken.None);

    /// <summary>Samples for the demo console from the current weights; empty while the state is quiesced or the loop has stopped.</summary>
    public async Task<IReadOnlyList<SampledCompletion>> SampleAsync(IReadOnlyList<string> prompts, SamplingOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await AskAsync(() => state.Generate(prompts, options, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return [];
        }
    }

    private async Task AbsorbLabelsAsync(ValidatedRecord[] batch, CancellationToken stop)
    {
        var result = await thread.RunAsync(() => state.AbsorbLabels(batch, labelTracker), stop).ConfigureAwait(false);
        LabelsAbsorbed += batch.Length;
        status.AddLabels(batch.Length);
        if (result.RewardSteps > 0)
            logger.LogDebug("Absorbed {Pairs} pairs and {Ratings} ratings ({Joined} joined to waiting rollouts); reward model trained {Steps} step(s), loss {Loss:0.###}",
                result.Pairs, result.Ratings, result.Joined, result.RewardSteps, result.RewardLoss);
    }

    private async Task ScoreAsync(CancellationToken stop)
    {
        var result = await thread.RunAsync(() => state.ScoreDue(), stop).ConfigureAwait(false);
        RolloutsScored += result.Rollouts;
        status.AddScored(result.Rollouts);
        if (result.Rollouts > 0)
            logger.LogDebug("Scored {Groups} groups ({Rollouts} rollouts, {Human} by human labels)", result.Groups, result.Rollouts, result.HumanScored);
    }

    /// <summary>An operator's rollback request, then the update decision and, when due, the update and what follows it.</summary>
    private async Task CheckUpdateAsync(CancellationToken stopUpdates)
    {
        if (await followUp.OperatorRollbackAsync().ConfigureAwait(false) is { } rollback)
        {
            await thread.RunAsync(state.Quiesce, CancellationToken.None).ConfigureAwait(false);
            End(rollback);
            return;
        }

        (UpdateDecision Decision, UpdateCycle? Cycle) outcome;
        try
        {
            // Not cancellable once started: an update that started finishes, and so does its checkpoint.
            outcome = await thread.RunAsync(() =>
            {
                var decision = state.DecideUpdate();
                if (decision is not (UpdateDecision.DueByCount or UpdateDecision.DueByInterval)) return (decision, null);
                // A replay after a rollback may end with records the intake dead-lettered (they never reach the state).
                if (state.Observation.ReplayPending) state.Observation.Progress(labelTracker);
                return (decision, (UpdateCycle?)state.RunUpdate(followUp.NextVersion, CancellationToken.None));
            }, stopUpdates).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopUpdates.IsCancellationRequested)
        {
            End(EpochEnd.Stop);
            return;
        }

        if (outcome.Cycle is { } cycle)
        {
            followUpInFlight = FollowUpAsync(cycle);
            return;
        }
        followUp.NotUpdated(outcome.Decision);
        await followUp.BetweenUpdatesAsync().ConfigureAwait(false);
    }

    /// <summary>The host's work after an update (checkpoint, commit, policy event, verdict), while the loop handles messages.</summary>
    private async Task FollowUpAsync(UpdateCycle cycle)
    {
        if (await followUp.AfterUpdateAsync(cycle).ConfigureAwait(false) is { } end)
        {
            End(end);
            return;
        }
        await followUp.BetweenUpdatesAsync().ConfigureAwait(false);
    }

    /// <summary>Waits until the next timer, a message to handle, or a stop.</summary>
    private async Task WaitForWorkAsync(long until, CancellationToken stopUpdates, CancellationToken stopMessages)
    {
        var delay = TimeSpan.FromSeconds((until - time.GetTimestamp()) / (double)time.TimestampFrequency);
        if (delay <= TimeSpan.Zero) return;
        // The stop of updates wakes the loop only until it has been seen (then the loop goes on without updates).
        using var wake = UpdatesEnded || stopUpdates.IsCancellationRequested
            ? CancellationTokenSource.CreateLinkedTokenSource(stopMessages)
            : CancellationTokenSource.CreateLinkedTokenSource(stopMessages, stopUpdates);
        var waits = new List<Task>(5) { Task.Delay(delay, time, wake.Token), requests.Reader.WaitToReadAsync(wake.Token).AsTask() };
        if (followUpInFlight is { } pending) waits.Add(pending);
        if (!labels.Completion.IsCompleted) waits.Add(labels.WaitToReadAsync(wake.Token).AsTask());
        if (rollouts is not null && !rollouts.Completion.IsCompleted && RolloutsHaveRoom) waits.Add(rollouts.WaitToReadAsync(wake.Token).AsTask());
        await Task.WhenAny(waits).ConfigureAwait(false);
        await wake.CancelAsync().ConfigureAwait(false); // releases the other waits
    }

    private void End(EpochEnd end) => ended.TrySetResult(end);

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * time.TimestampFrequency);

    private static ValidatedRecord[]? Take(ChannelReader<ValidatedRecord> channel, int most)
    {
        List<ValidatedRecord>? batch = null;
        while ((batch?.Count ?? 0) < most && channel.TryRead(out var record)) (batch ??= new List<ValidatedRecord>(most)).Add(record);
        return batch?.ToArray();
    }

    /// <summary>Runs <paramref name="work"/> as one of the loop's messages and returns its result; cancelled when the loop has stopped.</summary>
    private async Task<T> AskAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var request = new Request<T>(work, cancellationToken);
        try
        {
            await requests.Writer.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new OperationCanceledException("the learning loop has stopped");
        }
        return await request.Reply.ConfigureAwait(false);
    }

    private abstract class Request
    {
        /// <summary>Runs the work on the tensor thread and hands its result, failure or cancellation to the asker.</summary>
        public abstract Task RunAsync(TensorThread thread);

        /// <summary>The loop stopped before the request's turn.</summary>
        public abstract void Abandon();
    }

    private sealed class Request<T>(Func<T> work, CancellationToken cancellationToken) : Request
    {
        private readonly TaskCompletionSource<T> reply = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<T> Reply => reply.Task;

        public override async Task RunAsync(TensorThread thread)
        {
            try
            {
                reply.TrySetResult(await thread.RunAsync(work, cancellationToken).ConfigureAwait(false));
            }
            catch (OperationCanceledException e)
            {
                reply.TrySetCanceled(e.CancellationToken);
            }
            catch (Exception e)
            {
                // The asker's failure (the generator's: fatal for the epoch), not the loop's.
                reply.TrySetException(e);
            }
        }

        public override void Abandon() => reply.TrySetCanceled();
    }
}
