using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Online;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The host's side of the <see cref="LearningLoop"/>'s updates: what follows each decision and each update, off the
/// tensor thread. Per update (run by the loop: T inner steps, then the guardrail's verdict on the version it would
/// become):
/// <list type="bullet">
/// <item>accepted → checkpoint (durable) → commit offsets → policy event; <c>good</c> moves when the guardrail says
///   and the store wrote the pointer; a checkpoint that fails (a full volume) leaves the update in memory, /readyz
///   failing, until a later one succeeds;</item>
/// <item>rollback → the epoch ends; the pipeline moves <c>latest</c> to <c>good</c>, reloads, publishes a rollback event;</item>
/// <item>rejected or paused after the weights changed → the epoch ends; the pipeline reloads <c>latest</c>;</item>
/// <item>paused → due updates are skipped (counted) while intake, scoring and checkpoints go on.</item>
/// </list>
/// At every update check an operator's <c>prefonline checkpoint rollback</c> request is applied first. Without
/// updates, a checkpoint is still written every <see cref="WorkerOptions.CheckpointInterval"/> while input is
/// absorbed, and commits that failed are retried as often. Every checkpoint of the epoch but the final one is
/// written here (<see cref="CheckpointAsync"/>).
/// </summary>
/// <param name="giveUpOutput">
/// Fires some time after the worker's stop: then a policy event or commit that the broker does not take is given up
/// (the checkpoint is durable; the next start publishes the policy it loads), so an outage cannot hold a stop past
/// its grace period.
/// </param>
public sealed class UpdateFollowUp(
    WorkerOptions worker,
    LearningState state,
    IReadOnlyList<EpochInput> inputs,
    CheckpointCoordinator coordinator,
    Guardrail guardrail,
    PrefOnlineMetrics metrics,
    PipelineStatus status,
    CheckpointReadiness readiness,
    ILogger logger,
    TimeProvider time,
    CancellationToken giveUpOutput)
{
    private long lastCheckpoint = time.GetTimestamp();
    private long lastCommitRetry = time.GetTimestamp();
    private string lastOffsets = OffsetsKey(inputs);
    private bool pausedLogged;
    private GuardrailState lastState = GuardrailState.Ok;

    /// <summary>The version the next checkpoint will get: an accepted update's weights are published under it.</summary>
    public long NextVersion() => coordinator.Store.PeekNextVersion();

    /// <summary>A decision without an update: a skip is counted (and a pause logged once per pause).</summary>
    public void NotUpdated(UpdateDecision decision)
    {
        switch (decision)
        {
            case UpdateDecision.SkippedPaused:
                if (!pausedLogged) logger.LogWarning("Updates paused by the guardrail: {Reasons}", string.Join("; ", guardrail.Status.Reasons));
                pausedLogged = true;
                metrics.UpdateSkipped(SkipReasons.Paused);
                break;
            case UpdateDecision.SkippedTooFewSamples:
                metrics.UpdateSkipped(SkipReasons.InsufficientData);
                break;
        }
    }

    /// <summary>Between updates: the periodic checkpoint while input is absorbed, else a retry of commits that failed.</summary>
    public async Task BetweenUpdatesAsync()
    {
        if (time.GetElapsedTime(lastCheckpoint) >= worker.CheckpointInterval && OffsetsKey(inputs) != lastOffsets)
            await CheckpointAsync(policyChanged: false, new Dictionary<string, double>()).ConfigureAwait(false);
        else if (coordinator.CommitsBehind && time.GetElapsedTime(lastCommitRetry) >= worker.CheckpointInterval)
        {
            lastCommitRetry = time.GetTimestamp();
            await coordinator.RetryFailedCommitsAsync(inputs, giveUpOutput).ConfigureAwait(false);
        }
    }

    /// <summary>What follows an update from its verdict (not cancellable); an <see cref="EpochEnd"/> when the epoch must end.</summary>
    public async Task<EpochEnd?> AfterUpdateAsync(UpdateCycle cycle)
    {
        pausedLogged = false;
        var update = cycle.Update;
        if (cycle.Decision is { } decision) ReportGuardrail(decision);

        if (update.SkipReason == LearnerSkipReason.EmptyBatch)
        {
            metrics.UpdateSkipped(SkipReasons.InsufficientData);
            return null;
        }
        if (!update.Applied)
        {
            metrics.UpdateSkipped(SkipReasons.NonFinite);
            logger.LogWarning("Update skipped by the NaN/Inf guard ({Reason}); weights unchanged", update.SkipReason);
            return cycle.Decision is { Action: GuardrailAction.Rollback, RollbackTo: { } target }
                ? new EpochEnd(EpochEndKind.GuardrailRollback, Reasons(cycle.Decision), target)
                : null;
        }
        if (cycle.NeedsReload)
        {
            var decided = cycle.Decision!;
            if (decided is { Action: GuardrailAction.Rollback, RollbackTo: { } target })
            {
                metrics.UpdateSkipped(SkipReasons.Rejected);
                return new EpochEnd(EpochEndKind.GuardrailRollback, Reasons(decided), target);
            }
            metrics.UpdateSkipped(decided.RejectUpdate ? SkipReasons.NonFinite : SkipReasons.Paused);
            return new EpochEnd(EpochEndKind.Reload, (decided.RejectUpdate ? "update rejected: " : "updates paused: ") + Reasons(decided));
        }

        var updateMetrics = UpdateMetrics(update);
        var checkpoint = await CheckpointAsync(policyChanged: true, updateMetrics).ConfigureAwait(false);
        if (checkpoint is not null && checkpoint.Version != cycle.PolicyVersion)
            logger.LogWarning("Update was judged as v{Predicted} but checkpointed as {Checkpoint}", cycle.PolicyVersion, checkpoint.ToString());
        metrics.UpdateApplied(update.ToReport() with { PolicyVersion = cycle.PolicyVersion }, cycle.Duration, time.GetUtcNow(), update.StalenessMean);
        status.UpdateAccepted(new UpdatePoint(status.RunningSeconds, cycle.PolicyVersion, update.Loss, update.KlToReference, update.FreshMeanReward ?? update.MeanReward));
        logger.LogInformation("Update v{Version}: loss {Loss:0.####}, KL {Kl:0.####}, training reward {TrainingReward:0.###} (labels or reward model), {Rollouts} rollouts ({Fresh} fresh) + {Pairs} human pairs, {Seconds:0.00} s",
            cycle.PolicyVersion, update.Loss, update.KlToReference, update.FreshMeanReward ?? update.MeanReward, update.Rollouts, update.FreshRollouts, update.HumanPairs, cycle.Duration.TotalSeconds);

        // An update whose checkpoint failed lives in memory only: it is never a candidate for good (nothing on disk to roll back to).
        // A publish-only version (Checkpoints:Interval) holds no state to roll back to: never a candidate either.
        if (checkpoint is { PublishOnly: false } && guardrail.CheckpointWritten(checkpoint.Version) is { } promoted) await MarkGoodAsync(promoted).ConfigureAwait(false);
        if (cycle.Decision?.PromoteGood is { } good) await MarkGoodAsync(good).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// A checkpoint of the state with what the inputs absorbed; null when it could not be written (a full volume,
    /// an I/O error, a rollback request arriving meanwhile): the learner carries on in memory, /readyz says why,
    /// and the next update or checkpoint interval tries again. Nothing is committed or published meanwhile.
    /// </summary>
    private async Task<Checkpoint?> CheckpointAsync(bool policyChanged, IReadOnlyDictionary<string, double> updateMetrics)
    {
        try
        {
            // Every checkpoint announces its policy, changed or not: the newest event must always name a file that
            // retention (Checkpoints:KeepLast) has kept, or a generator starting later could not load it.
            var checkpoint = await coordinator.WriteAsync(state, inputs, policyChanged, updateMetrics, publish: true, giveUpOutput).ConfigureAwait(false);
            lastCheckpoint = time.GetTimestamp();
            lastOffsets = OffsetsKey(inputs);
            if (readiness.Failing) logger.LogInformation("Checkpoint {Checkpoint} written: checkpoints work again", checkpoint.ToString());
            readiness.Succeeded(checkpoint.Version, time.GetUtcNow());
            return checkpoint;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lastCheckpoint = time.GetTimestamp(); // the next periodic attempt after a full interval, not every tick
            var outOfSpace = CheckpointRetry.IsOutOfSpace(e);
            metrics.CheckpointFailed(outOfSpace);
            readiness.Failed(e, time.GetUtcNow());
            logger.LogError("Checkpoint failed{Full}: {Error}; learning continues in memory, offsets stay uncommitted until a checkpoint succeeds",
                outOfSpace ? " (the checkpoint volume is full)" : "", e.Message);
            return null;
        }
        catch (InvalidOperationException) when (coordinator.Store.Reader.ReadRollbackRequest().Request is not null)
        {
            // An operator's rollback request arrived during the update: the loop applies it next.
            logger.LogWarning("Checkpoint skipped: an operator rollback request arrived; applying it");
            return null;
        }
    }

    /// <summary>
    /// Writes a proposal to the store's <c>good</c> pointer; only when that succeeded does the guardrail's own
    /// <c>good</c> (its rollback target, <c>prefonline_good_version</c>) move. A failed write leaves the
    /// proposal a candidate: it is proposed again at the next evaluation.
    /// </summary>
    private async Task MarkGoodAsync(long version)
    {
        try
        {
            await coordinator.Store.MarkGoodAsync(version, CancellationToken.None).ConfigureAwait(false);
            guardrail.GoodMarked(version);
            logger.LogInformation("Checkpoint v{Version} is now good (passed the guardrail and its confirmations)", version);
        }
        catch (Exception e) when (e is ArgumentException or CheckpointCorruptException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not move good to v{Version}: {Error}; the guardrail's rollback target stays v{Good}", version, e.Message, guardrail.Status.GoodVersion);
        }
    }

    /// <summary>
    /// Applies an operator's <c>prefonline checkpoint rollback</c> request to the store; the epoch then ends (the loop
    /// quiesces the state first: nothing may be generated from the abandoned weights).
    /// </summary>
    public async Task<EpochEnd?> OperatorRollbackAsync()
    {
        if (coordinator.Store.Reader.ReadRollbackRequest().Request is null) return null;
        // Local pointer I/O, not cancellable: a stop arriving now must not turn into a "cancelled" epoch that skips the final checkpoint.
        var rollback = await coordinator.Store.ApplyRequestedRollbackAsync(CancellationToken.None).ConfigureAwait(false);
        if (rollback is not { Changed: true }) return null;
        return new EpochEnd(EpochEndKind.OperatorRollback, $"operator rollback v{rollback.From} -> v{rollback.To}: {rollback.Reason}", rollback.To);
    }

    private void ReportGuardrail(GuardrailDecision decision)
    {
        if (decision.IsNewTrip)
            logger.LogWarning("Guardrail tripped at v{Version} (action {Action}): {Reasons}", decision.PolicyVersion, decision.Action, Reasons(decision));
        else if (decision.State == GuardrailState.Warning && lastState == GuardrailState.Ok)
            logger.LogInformation("Guardrail warning at v{Version}: {Reasons}", decision.PolicyVersion, Reasons(decision));
        lastState = decision.State;
    }

    private static string Reasons(GuardrailDecision decision) => decision.Reasons.Count == 0 ? "no reason given" : string.Join("; ", decision.Reasons);

    private static Dictionary<string, double> UpdateMetrics(LearnerUpdate update)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        void Put(string name, double? value)
        {
            if (value is { } v && double.IsFinite(v)) values[name] = v;
        }
        Put("loss", update.Loss);
        Put("kl_to_reference", update.KlToReference);
        Put("grad_norm", update.GradNorm);
        Put("policy_entropy", update.Entropy);
        Put("reward", update.FreshMeanReward ?? update.MeanReward);
        Put("sample_staleness", update.StalenessMean);
        Put("kl_coefficient", update.KlCoefficient);
        return values;
    }

    /// <summary>A cheap fingerprint of what the inputs have absorbed (changes when any resume offset moves).</summary>
    private static string OffsetsKey(IReadOnlyList<EpochInput> inputs) =>
        string.Join(",", inputs.SelectMany(i => i.Tracker.Snapshot()).Select(o => o.ToString()));
}
