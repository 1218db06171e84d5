using Microsoft.Extensions.Logging;
using Polly;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Guardrails;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Observability.Health;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The learner side of <c>prefonline run</c> (roles all and learner), from start to clean stop:
/// <list type="number">
/// <item>open the checkpoint store (the single-writer lock); with an empty store, build the initial state
///   (policy from <c>Model:InitialPolicy</c> or the demo fit), write it as the first checkpoint and mark it
///   <c>good</c> (it is the reference itself), so a restart never rebuilds it;</item>
/// <item>load <c>latest</c> (falling back along its lineage past corrupt versions), create the guardrail from the
///   <c>good</c> pointer, publish the loaded policy;</item>
/// <item>run epochs (<see cref="LearnerEpoch"/>): each resumes every input at the checkpoint's offsets; when one
///   ends for a rollback or a refused update, the state is rebuilt from the checkpoint named and a new
///   epoch starts — the same path a process restart takes, with two differences (docs/OPERATIONS.md, "What a
///   rollback does"): the generation input continues where the discarded state had read
///   it (no prompt is answered twice), and the labels read again are absorbed but not judged by the
///   guardrail (<see cref="LabelObservationFilter"/>);</item>
/// <item>on stop: intake stops, the update in flight finishes, a final checkpoint is written and its offsets
///   committed.</item>
/// </list>
/// </summary>
public sealed class LearnerPipeline(
    WorkerRole role,
    LearningStateSettings settings,
    FeedbackOptions feedback,
    CheckpointOptions checkpointOptions,
    GuardrailOptions guardrailOptions,
    ValidationLimits limits,
    KafkaOptions kafka,
    IStreamTransport transport,
    TensorThread thread,
    IInitialPolicySource? initialPolicy,
    PrefOnlineMetrics metrics,
    StreamingMetrics streamingMetrics,
    GuardrailHolder guardrailHolder,
    ReadinessGate modelGate,
    PipelineStatus status,
    string configHash,
    ILoggerFactory loggers,
    TimeProvider time,
    CheckpointReadiness? checkpointReadiness = null,
    PolicyServingLeases? servingLeases = null,
    ResiliencePipeline? checkpointIo = null,
    ServingHandOff? servingHandOff = null)
{
    private readonly CheckpointReadiness checkpointHealth = checkpointReadiness ?? new CheckpointReadiness();

    private readonly ILogger logger = loggers.CreateLogger<LearnerPipeline>();

    /// <summary>The state of the running epoch (null before the first load); for tests and the demo console.</summary>
    public LearningState? State { get; private set; }

    /// <summary>The running epoch.</summary>
    public LearnerEpoch? Epoch { get; private set; }

    /// <summary>Runs until <paramref name="stopping"/> fires, then stops cleanly within <paramref name="shutdown"/>'s patience.</summary>
    public async Task RunAsync(CancellationToken stopping, CancellationToken shutdown)
    {
        using var staging = new StagingArea(settings.Worker.StagingDirectory);
        await using var store = await CheckpointStore.OpenAsync(checkpointOptions, loggers.CreateLogger<CheckpointStore>(), checkpointIo, time).ConfigureAwait(false);
        var sink = transport.Sink;
        var topics = transport.Topics;
        var publisher = new PolicyPublisher(sink, topics.Policy, loggers.CreateLogger<PolicyPublisher>(), time, servingHandOff);

        var loaded = await LoadLatestAsync(store, stopping).ConfigureAwait(false);
        if (loaded is null)
        {
            await InitializeStoreAsync(store, staging, publisher, stopping).ConfigureAwait(false);
            loaded = await LoadLatestAsync(store, stopping).ConfigureAwait(false)
                     ?? throw new InvalidOperationException($"the first checkpoint written to {store.Root} does not load");
        }

        var good = store.Reader.ReadPointers().Good;
        var guardrail = new Guardrail(guardrailOptions, time, good);
        guardrailHolder.Set(guardrail);
        metrics.AttachGuardrail(guardrail);
        store.ProtectFromRetention("guardrail promotion candidates", () => guardrail.PromotionCandidates);
        if (servingLeases is not null) store.ProtectFromRetention("policies served to generators", servingLeases.Active);
        if (servingHandOff is not null) store.ProtectFromRetention("versions being handed off to the serving stack", servingHandOff.CheckpointsInUse);
        var files = new LearningStateFiles(settings, thread, guardrail, metrics, staging, time, loggers.CreateLogger<LearningState>());
        var coordinator = new CheckpointCoordinator(store, files, thread, publisher, metrics, status, configHash, loggers.CreateLogger<CheckpointCoordinator>(), time, new PolicyLocation(settings.Worker.PolicyBaseUrl));
        var deadLetters = new DeadLetterRouter(sink, topics.DeadLetter, streamingMetrics, loggers.CreateLogger<DeadLetterRouter>());
        var context = new LearnerPipelineContext(role, settings, feedback, kafka.ConsumerGroup, transport, thread, coordinator, guardrail, metrics, streamingMetrics,
            new RecordValidator(limits, SchemaNames.PromptTopic, time), new RecordValidator(limits, SchemaNames.FeedbackTopic, time), new RecordValidator(limits, SchemaNames.RolloutTopic, time),
            deadLetters, status, checkpointHealth, loggers.CreateLogger("PrefOnline.Worker.Pipeline"), time, kafka.BufferedBytesFor(limits.MaxRecordBytes));
        var windows = new List<(string Topic, DuplicateIdWindow Window)>();
        foreach (var (topic, validator) in new[] { (topics.Feedback, context.FeedbackValidator), (role == WorkerRole.All ? topics.Prompts : topics.Rollouts, role == WorkerRole.All ? context.PromptValidator : context.RolloutValidator) })
            if (validator.DuplicateWindow is { } window) windows.Add((topic, window));
        coordinator.DuplicateWindows = windows;

        var checkpoint = loaded;
        var state = await thread.RunAsync(() => files.Load(checkpoint), stopping).ConfigureAwait(false);
        State = state;
        Loaded(checkpoint, state);
        await publisher.PublishAsync(coordinator.EventFor(checkpoint, state.PolicyVersion, checkpoint.Metrics, null, null), checkpoint, stopping).ConfigureAwait(false);
        metrics.LearnerStarted(time.GetUtcNow());
        logger.LogInformation("Learner running (role {Role}) from {Checkpoint}: policy v{Version}, {Replay} rollouts in replay, {Pending} waiting for labels; good = {Good}",
            WorkerRoles.Name(role), checkpoint.ToString(), state.PolicyVersion, state.Replay.Count, state.Pending.RolloutCount, good is null ? "none" : $"v{good}");

        // The embedded broker lives and dies with this process: offsets in checkpoints of an earlier process
        // name records of a broker that no longer exists, so only this process's checkpoints are resumed from.
        var offsetsValidFrom = transport.IsEmbedded ? store.PeekNextVersion() : 0;
        if (checkpoint.Version >= offsetsValidFrom) RestoreDuplicateWindows(files, checkpoint, windows);
        // A rollback made while no learner ran (`prefonline checkpoint rollback`): continue as after an online one.
        IReadOnlyList<Streaming.Transport.ResumeOffset> continueFrom = checkpoint.Version >= offsetsValidFrom ? await ResumeOfflineRollbackAsync(store, checkpoint, state).ConfigureAwait(false) : [];
        try
        {
            while (true)
            {
                var epoch = new LearnerEpoch(context, state, checkpoint, useCheckpointOffsets: checkpoint.Version >= offsetsValidFrom, continueFrom);
                Epoch = epoch;
                status.SetRunning(true);
                EpochEnd end;
                try
                {
                    end = await epoch.RunAsync(stopping).ConfigureAwait(false);
                }
                catch
                {
                    await epoch.StopAsync(finalCheckpoint: false, shutdown).ConfigureAwait(false);
                    throw;
                }
                if (end.Kind == EpochEndKind.Stop)
                {
                    await epoch.StopAsync(finalCheckpoint: true, shutdown).ConfigureAwait(false);
                    return;
                }

                logger.LogWarning("Restarting the pipeline from a checkpoint ({Kind}): {Reason}", end.Kind, end.Reason);
                await epoch.StopAsync(finalCheckpoint: false, shutdown).ConfigureAwait(false);
                var abandoned = state.PolicyVersion;
                // What the discarded state had absorbed: the new epoch continues the generation input from there,
                // and labels below it are replays (absorbed again, not judged again).
                var reached = epoch.Inputs.SelectMany(i => i.Tracker.Snapshot()).ToList();
                if (end is { Kind: EpochEndKind.GuardrailRollback, TargetVersion: { } target })
                {
                    // An operator's request that arrived meanwhile wins: it is the newer, deliberate decision.
                    if (await store.ApplyRequestedRollbackAsync(CancellationToken.None).ConfigureAwait(false) is { } requested)
                        logger.LogWarning("An operator's rollback to v{Requested} arrived with the guardrail's to v{Target}: applied the operator's", requested.To, target);
                    else
                        await store.RollbackAsync(target, Truncate("guardrail: " + end.Reason), CancellationToken.None).ConfigureAwait(false);
                }

                status.SetRunning(false);
                State = null; // unpublished before disposal: readers (the demo console) must never see a disposed state
                await thread.RunAsync(state.Dispose, CancellationToken.None).ConfigureAwait(false);
                checkpoint = await LoadLatestAsync(store, CancellationToken.None).ConfigureAwait(false)
                             ?? throw new InvalidOperationException($"no valid checkpoint left in {store.Root} to restart from");
                var reloaded = checkpoint;
                state = await thread.RunAsync(() => files.Load(reloaded), CancellationToken.None).ConfigureAwait(false);
                var rolledBack = end.Kind is EpochEndKind.GuardrailRollback or EpochEndKind.OperatorRollback;
                var restored = state;
                // A reload after a refused update abandons nothing that was published; a rollback abandons the
                // versions after the restored one up to the one served until now.
                long? abandonedFrom = rolledBack && abandoned > restored.PolicyVersion ? restored.PolicyVersion + 1 : null;
                var replayed = Replayed(reached, topics.Feedback, checkpoint);
                await thread.RunAsync(() => restored.Observation.Extend(replayed, abandonedFrom, abandonedFrom is null ? null : abandoned), CancellationToken.None).ConfigureAwait(false);
                continueFrom = reached;
                State = state;
                Loaded(checkpoint, state);

                if (rolledBack)
                {
                    var policyEvent = coordinator.EventFor(checkpoint, state.PolicyVersion, checkpoint.Metrics, abandoned, Truncate(end.Reason));
                    using (var either = CancellationTokenSource.CreateLinkedTokenSource(stopping, shutdown))
                    {
                        try
                        {
                            await publisher.PublishAsync(policyEvent, checkpoint, either.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                        {
                            // Stopping while the broker is unreachable: the next epoch ends at once with a final
                            // checkpoint, and the next start publishes the checkpoint it loads.
                            logger.LogWarning("Rollback event v{Version} not published before the stop; the next start publishes it", state.PolicyVersion);
                        }
                    }
                    status.RolledBack(abandoned, state.PolicyVersion, end.Reason);
                    if (end.Kind == EpochEndKind.GuardrailRollback)
                    {
                        metrics.RolledBack();
                        guardrail.RollbackCompleted(store.Reader.ReadPointers().Good ?? checkpoint.Version);
                    }
                    else
                    {
                        // The operator rejected everything after the target: the store moved `good` back with `latest`
                        // when it was newer, none of the abandoned versions may become good later, and the monitors
                        // must not judge the restored policy by the abandoned versions' data.
                        guardrail.OperatorRolledBack(store.Reader.ReadPointers().Good);
                    }
                    logger.LogWarning("Rolled back: serving v{Version} (from v{From}) from checkpoint {Checkpoint}; learning resumes from there", state.PolicyVersion, abandoned, checkpoint.ToString());
                }
            }
        }
        finally
        {
            status.SetRunning(false);
            Epoch = null;
            if (State is { } last)
            {
                State = null;
                await thread.RunAsync(last.Dispose, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Gives the validators back the duplicate-id windows the loaded checkpoint saved (exactly-once includes duplicates).</summary>
    private void RestoreDuplicateWindows(LearningStateFiles files, Checkpoint checkpoint, IReadOnlyList<(string Topic, DuplicateIdWindow Window)> windows)
    {
        var saved = files.ReadDuplicateWindows(checkpoint);
        foreach (var (topic, window) in windows)
        {
            if (!saved.TryGetValue(topic, out var entries)) continue;
            var restored = window.Restore(entries);
            logger.LogInformation("Restored {Count} recent ids of {Topic} from checkpoint {Checkpoint}: duplicates of what it absorbed are refused after the restart too",
                restored, topic, checkpoint.ToString());
        }
    }

    /// <summary>
    /// When the loaded checkpoint is the target of a rollback nothing has resumed from yet (an offline
    /// <c>prefonline checkpoint rollback</c>, or a crash right after an online one), the input streams continue as
    /// after an online rollback, from what the abandoned version had absorbed (its manifest's offsets).
    /// </summary>
    private async Task<IReadOnlyList<Streaming.Transport.ResumeOffset>> ResumeOfflineRollbackAsync(CheckpointStore store, Checkpoint checkpoint, LearningState state)
    {
        if (store.Reader.RollbackNotYetResumed() is not { From: { } from } rollback || rollback.To != checkpoint.Version || from == checkpoint.Version) return [];
        var verdict = await store.Reader.VerifyAsync(from, CheckpointVerificationLevel.Quick, CancellationToken.None).ConfigureAwait(false);
        if (verdict.Manifest is not { } abandonedManifest)
        {
            logger.LogWarning("Resuming the rollback {From} -> {To}: the abandoned version is gone, so its inputs are read again from the target's offsets and judged by the guardrail",
                CheckpointVersion.DirectoryName(from), checkpoint.ToString());
            return [];
        }
        var reached = abandonedManifest.Offsets.SelectMany(t => t.Value.Select(p => new Streaming.Transport.ResumeOffset(t.Key, p.Key, p.Value))).ToList();
        long? abandonedHead = abandonedManifest.Metrics.TryGetValue("policy_version", out var head) && double.IsFinite(head) ? (long)head : null;
        long? abandonedFrom = abandonedHead > state.PolicyVersion ? state.PolicyVersion + 1 : null;
        var replayed = Replayed(reached, transport.Topics.Feedback, checkpoint);
        await thread.RunAsync(() => state.Observation.Extend(replayed, abandonedFrom, abandonedFrom is null ? null : abandonedHead), CancellationToken.None).ConfigureAwait(false);
        logger.LogWarning("Resuming the rollback {From} -> {To} ({Reason}): prompts continue where {From} had read, its labels are absorbed again without being judged by the guardrail",
            CheckpointVersion.DirectoryName(from), checkpoint.ToString(), rollback.Reason, CheckpointVersion.DirectoryName(from));
        return reached;
    }

    /// <summary>The feedback partitions the restored state reads again: where the discarded one had absorbed more than <paramref name="restored"/> holds.</summary>
    private static List<Streaming.Transport.ResumeOffset> Replayed(IEnumerable<Streaming.Transport.ResumeOffset> reached, string feedbackTopic, Checkpoint restored) =>
        reached.Where(r => r.Partition.Topic == feedbackTopic && r.NextOffset > (restored.NextOffset(feedbackTopic, r.Partition.Partition) ?? 0)).ToList();

    private void Loaded(Checkpoint checkpoint, LearningState state)
    {
        checkpointHealth.Succeeded(checkpoint.Version, time.GetUtcNow());
        metrics.SetPolicyVersion(state.PolicyVersion);
        status.SetPolicyVersion(state.PolicyVersion);
        status.CheckpointLoaded(checkpoint.Version);
        var resumedFrom = checkpoint.ToString();
        modelGate.MarkReady(() => $"serving policy v{status.PolicyVersion} (resumed from checkpoint {resumedFrom})");
    }

    private async Task<Checkpoint?> LoadLatestAsync(CheckpointStore store, CancellationToken cancellationToken)
    {
        var result = await store.LoadLatestValidAsync(cancellationToken).ConfigureAwait(false);
        foreach (var warning in result.Warnings) logger.LogWarning("Checkpoint store {Root}: {Warning}", store.Root, warning);
        foreach (var skipped in result.Skipped) logger.LogError("Refused checkpoint v{Version}: {Reason}", skipped.Version, skipped.Reason);
        if (result.Checkpoint is null && result.Skipped.Count > 0)
            throw new InvalidDataException($"no valid checkpoint in {store.Root}: every version was refused (see above); repair or move the directory, or roll back by hand");
        if (result.Checkpoint is { } loaded && (result.Skipped.Count > 0 || result.Warnings.Count > 0))
        {
            // The store was inconsistent (a pointer to a missing version, corrupt versions, a `good` off the line):
            // the learner runs from what it found, and says so on /readyz until it restarts.
            var note = string.Join("; ", result.Skipped.Select(s => $"refused {s}").Concat(result.Warnings)) + $"; resumed from {loaded}";
            logger.LogError("Checkpoint store {Root} was inconsistent when loaded: {Note}", store.Root, note);
            checkpointHealth.StoreWasInconsistent(note);
        }
        return result.Checkpoint;
    }

    /// <summary>An empty store: the initial state becomes the first checkpoint, marked good.</summary>
    private async Task InitializeStoreAsync(CheckpointStore store, StagingArea staging, PolicyPublisher publisher, CancellationToken stopping)
    {
        var source = initialPolicy ?? throw new InvalidOperationException(
            $"the checkpoint store {store.Root} is empty and Model:InitialPolicy is not set: give a policy checkpoint directory (e.g. one written by `prefonline init --preset small --out DIR`)");
        logger.LogInformation("Checkpoint store {Root} is empty: building the initial state from {Source}", store.Root, source.Description);
        var scratchGuardrail = new Guardrail(guardrailOptions, time); // observes nothing: the first checkpoint is written before any input
        var files = new LearningStateFiles(settings, thread, scratchGuardrail, metrics, staging, time, loggers.CreateLogger<LearningState>());
        var coordinator = new CheckpointCoordinator(store, files, thread, publisher, metrics, status, configHash, loggers.CreateLogger<CheckpointCoordinator>(), time, new PolicyLocation(settings.Worker.PolicyBaseUrl));
        var state = await thread.RunAsync(() =>
        {
            var (policy, tokenizer) = source.Create(stopping);
            return files.CreateFresh(policy, tokenizer);
        }, stopping).ConfigureAwait(false);
        try
        {
            var version = store.PeekNextVersion();
            await thread.RunAsync(() => state.AdoptFirstVersion(version), stopping).ConfigureAwait(false);
            var checkpoint = await coordinator.WriteAsync(state, [], policyChanged: true, new Dictionary<string, double>(), publish: false, stopping).ConfigureAwait(false);
            await store.MarkGoodAsync(checkpoint.Version, CancellationToken.None).ConfigureAwait(false);
            logger.LogInformation("Initial state written as checkpoint {Checkpoint} and marked good", checkpoint.ToString());
        }
        finally
        {
            await thread.RunAsync(state.Dispose, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static string Truncate(string text) => text.Length <= 500 ? text : text[..499] + "…";
}
