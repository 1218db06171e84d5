using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.PolicyDistribution;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Writes learner checkpoints in the order delivery semantics need (docs/ARCHITECTURE.md, "Delivery semantics"): stage a consistent
/// snapshot with its offsets on the tensor thread → write it atomically (durable, <c>latest</c>) → only
/// then commit the offsets to Kafka → publish the policy event pointing at the new checkpoint's policy.
/// <para>With <c>Checkpoints:Interval</c> N &gt; 1 (or <c>Checkpoints:IntervalTime</c>) only every N-th update is a
/// checkpoint; the updates in between are written as publish-only versions (the policy files alone, the offsets of the
/// checkpoint they follow), published the same way, and commit nothing. The decision is made here, per call.</para>
/// </summary>
public sealed class CheckpointCoordinator(
    CheckpointStore store,
    LearningStateFiles files,
    TensorThread thread,
    PolicyPublisher publisher,
    PrefOnlineMetrics metrics,
    PipelineStatus status,
    string configHash,
    ILogger logger,
    TimeProvider time,
    PolicyLocation? location = null)
{
    private readonly PolicyLocation policyLocation = location ?? new PolicyLocation(null);
    private readonly Dictionary<EpochInput, (IReadOnlyList<ResumeOffset> Offsets, string Checkpoint)> uncommitted = [];
    private readonly int interval = store.Options.Interval;
    private readonly TimeSpan intervalTime = store.Options.IntervalTime;
    private int updatesSinceCheckpoint;
    private long lastCheckpointAt = time.GetTimestamp();

    public CheckpointStore Store => store;

    /// <summary>The duplicate-id windows of the learner's input topics, saved with every checkpoint (set before the first write).</summary>
    public IReadOnlyList<(string Topic, DuplicateIdWindow Window)> DuplicateWindows { get; set; } = [];

    /// <summary>
    /// Writes a checkpoint of <paramref name="state"/> with what <paramref name="inputs"/> have absorbed,
    /// commits those offsets, and (with <paramref name="publish"/>) publishes the policy. The write is not
    /// cancellable once started: a stop waits for it (the final checkpoint is the point of a clean stop).
    /// <paramref name="cancellationToken"/> only gives up on the commit and the policy event that follow the
    /// durable write (both are redone later: by the next checkpoint, by the next start).
    /// A write that fails (<see cref="CheckpointWriteException"/>, e.g. a full volume; an <see cref="IOException"/>
    /// while staging) changes nothing: the state keeps what it absorbed, nothing is committed or published.
    /// An update (<paramref name="policyChanged"/> and <paramref name="publish"/>) that is not due for a checkpoint
    /// (<c>Checkpoints:Interval</c>, <c>IntervalTime</c>) is written as a publish-only version instead
    /// (<see cref="Checkpoint.PublishOnly"/>), published, and commits nothing.
    /// </summary>
    public async Task<Checkpoint> WriteAsync(LearningState state, IReadOnlyList<EpochInput> inputs, bool policyChanged, IReadOnlyDictionary<string, double> updateMetrics, bool publish, CancellationToken cancellationToken)
    {
        if (publish && policyChanged && store.ResumePoint is { } resume && !CheckpointDue())
            return await PublishOnlyAsync(state, resume, updateMetrics, cancellationToken).ConfigureAwait(false);
        var windows = DuplicateWindows;
        var staged = await thread.RunAsync(() => files.Stage(state, inputs.Select(i => i.Tracker), policyChanged, updateMetrics, windows), CancellationToken.None).ConfigureAwait(false);
        Checkpoint checkpoint;
        try
        {
            var draft = DraftOf(staged, new CheckpointDraft());
            foreach (var offset in staged.Offsets) draft.SetOffset(offset.Partition.Topic, offset.Partition.Partition, offset.NextOffset);
            checkpoint = await store.WriteAsync(draft, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            // The audit entries the staging took belong in the next checkpoint that is written.
            await thread.RunAsync(() => files.Unstage(state, staged), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        finally
        {
            StagingArea.Delete(staged.Directory);
        }
        updatesSinceCheckpoint = 0;
        lastCheckpointAt = time.GetTimestamp();
        metrics.CheckpointWritten();
        status.CheckpointWritten(checkpoint.Version);
        logger.LogInformation("Checkpoint {Checkpoint}: policy v{Version}{Changed}, {Offsets} input offsets, {Audited} audited labels",
            checkpoint.ToString(), staged.PolicyVersion, staged.PolicyChanged ? " (new)" : "", staged.Offsets.Count, staged.AuditedLabels);

        foreach (var input in inputs)
        {
            // Only a partition's current owner may commit its offset. The checkpoint also holds offsets of
            // partitions this member does not own (yet): restored from the previous checkpoint while the group
            // is still (re)joining after a restart, or handed to another member by a rebalance. Committing those
            // made librdkafka's synchronous commit wait for the join and then fail with "Unknown member", which
            // threw the consumer back into joining — with a checkpoint per update, a restarted worker never got
            // its feedback partitions (found by the kill-restart process test). It would also overwrite the
            // commits of the partitions' real owner.
            var owned = input.Source.Assignment.ToHashSet();
            var offsets = staged.Offsets.Where(o => input.Source.Topics.Contains(o.Partition.Topic) && owned.Contains(o.Partition)).ToList();
            if (offsets.Count == 0) continue;
            await CommitAsync(input, offsets, checkpoint.ToString(), retry: false, cancellationToken).ConfigureAwait(false);
        }

        if (!publish) return checkpoint;
        try
        {
            await publisher.PublishAsync(EventFor(checkpoint, staged.PolicyVersion, staged.Metrics, rollbackFrom: null, reason: null), checkpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Only a stop gives up on the event (the broker is unreachable and the grace period is running): the
            // checkpoint is durable, and the next start publishes the policy it loads, so nothing is lost.
            logger.LogWarning("Policy event v{Version} for checkpoint {Checkpoint} not published (stopping while the broker does not take it); the next start publishes the policy it loads",
                staged.PolicyVersion, checkpoint.ToString());
        }
        return checkpoint;
    }

    /// <summary>The staged files (shared ones as content-addressed blobs), metrics and config hash in <paramref name="draft"/>.</summary>
    private CheckpointDraft DraftOf(StagedCheckpoint staged, CheckpointDraft draft)
    {
        foreach (var (name, path) in staged.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (staged.Shared.Contains(name)) draft.ShareFile(name, path);
            else draft.CopyFile(name, path);
        }
        foreach (var (name, value) in staged.Metrics) draft.SetMetric(name, value);
        return draft.WithConfigHash(configHash);
    }

    /// <summary>Whether this update is the <c>Checkpoints:Interval</c>-th since the last checkpoint, or <c>IntervalTime</c> has passed.</summary>
    private bool CheckpointDue() =>
        updatesSinceCheckpoint + 1 >= interval || (intervalTime > TimeSpan.Zero && time.GetElapsedTime(lastCheckpointAt) >= intervalTime);

    /// <summary>
    /// An update between two checkpoints: its policy files as a publish-only version (offsets: those of
    /// <paramref name="resume"/>, the checkpoint a restart would resume from), then its policy event. Nothing is committed:
    /// a crash before the next checkpoint redoes these updates from the labels re-read from <paramref name="resume"/>'s offsets.
    /// </summary>
    private async Task<Checkpoint> PublishOnlyAsync(LearningState state, Checkpoint resume, IReadOnlyDictionary<string, double> updateMetrics, CancellationToken cancellationToken)
    {
        var staged = await thread.RunAsync(() => files.StagePolicy(state, updateMetrics), CancellationToken.None).ConfigureAwait(false);
        Checkpoint published;
        try
        {
            var draft = DraftOf(staged, new CheckpointDraft().AsPublishOnly());
            draft.SetOffsets(resume.Offsets);
            published = await store.WriteAsync(draft, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            StagingArea.Delete(staged.Directory);
        }
        updatesSinceCheckpoint++;
        logger.LogInformation("Version {Version}: policy v{PolicyVersion} published without a checkpoint ({Since} update(s) since checkpoint {Resume}; Checkpoints:Interval {Interval})",
            published.ToString(), staged.PolicyVersion, updatesSinceCheckpoint, resume.ToString(), interval);
        try
        {
            await publisher.PublishAsync(EventFor(published, staged.PolicyVersion, staged.Metrics, rollbackFrom: null, reason: null), published, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Policy event v{Version} ({Checkpoint}, publish-only) not published (stopping while the broker does not take it); the next start publishes the policy it resumes",
                staged.PolicyVersion, published.ToString());
        }
        return published;
    }

    /// <summary>True while the offsets of some input's latest checkpoint are not committed (the commit failed).</summary>
    public bool CommitsBehind
    {
        get
        {
            lock (uncommitted) return uncommitted.Count > 0;
        }
    }

    /// <summary>
    /// Commits again what failed after an earlier checkpoint, for the inputs still running (those of an ended
    /// epoch are dropped). Without this, committed offsets would stay behind after a broker blip for as long as
    /// no new input causes another checkpoint: wrong lag for Kafka tooling and for the group.
    /// </summary>
    public async Task RetryFailedCommitsAsync(IReadOnlyList<EpochInput> current, CancellationToken cancellationToken)
    {
        List<(EpochInput Input, (IReadOnlyList<ResumeOffset> Offsets, string Checkpoint) Pending)> retries;
        lock (uncommitted)
        {
            foreach (var stale in uncommitted.Keys.Where(i => !current.Contains(i)).ToList()) uncommitted.Remove(stale);
            retries = uncommitted.Select(u => (u.Key, u.Value)).ToList();
        }
        foreach (var (input, (offsets, checkpoint)) in retries) await CommitAsync(input, offsets, checkpoint, retry: true, cancellationToken).ConfigureAwait(false);
    }

    private async Task CommitAsync(EpochInput input, IReadOnlyList<ResumeOffset> offsets, string checkpoint, bool retry, CancellationToken cancellationToken)
    {
        try
        {
            await input.Source.CommitAsync(offsets, cancellationToken).ConfigureAwait(false);
            bool wasBehind;
            lock (uncommitted) wasBehind = uncommitted.Remove(input);
            if (wasBehind && retry) logger.LogInformation("Committed {Input} offsets of checkpoint {Checkpoint} after an earlier failure", input.Name, checkpoint);
        }
        catch (Exception e) when (e is StreamingException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // Committed offsets serve lag monitoring and the group; restarts resume from the checkpoint. Retried
            // every checkpoint interval (RetryFailedCommitsAsync) and by the next checkpoint.
            lock (uncommitted) uncommitted[input] = (offsets, checkpoint);
            if (retry) logger.LogDebug("Commit of {Input} offsets of checkpoint {Checkpoint} failed again ({Error})", input.Name, checkpoint, e.Message);
            else logger.LogWarning("Could not commit {Input} offsets after checkpoint {Checkpoint} ({Error}); retried every checkpoint interval", input.Name, checkpoint, e.Message);
        }
    }

    /// <summary>
    /// The policy event naming <paramref name="checkpoint"/>'s policy file as <paramref name="policyVersion"/> (a LoRA
    /// version's adapter weights: <see cref="PolicyFiles.WeightsNameOf"/>), with the SHA-256 of every policy file the
    /// checkpoint holds (weights or adapter and base, tokenizer files, from its manifest), so generators verify each
    /// before they load anything.
    /// </summary>
    public PolicyEvent EventFor(Checkpoint checkpoint, long policyVersion, IReadOnlyDictionary<string, double> eventMetrics, long? rollbackFrom, string? reason)
    {
        var uri = policyLocation.UriOf(checkpoint);
        var weights = PolicyFiles.WeightsNameOf(checkpoint.Contains);
        var sha = checkpoint.Manifest.Files[weights].Sha256;
        var files = checkpoint.Manifest.Files.Where(f => PolicyFiles.IsNeeded(weights, f.Key)).ToDictionary(f => f.Key, f => f.Value.Sha256, StringComparer.Ordinal);
        var finite = eventMetrics.Where(m => double.IsFinite(m.Value)).ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        var created = time.GetUtcNow();
        return rollbackFrom is { } from && from > policyVersion
            ? PolicyEvent.Rollback(from, policyVersion, reason ?? "rollback", uri, sha, created, finite, files)
            : PolicyEvent.Publish(policyVersion, uri, sha, created, finite, files);
    }

    /// <summary>The published policy version a checkpoint's weights carry (its worker.json).</summary>
    public static long PolicyVersionOf(Checkpoint checkpoint)
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(checkpoint.GetPath(StateFiles.Worker)));
        return document.RootElement.GetProperty("policy_version").GetInt64();
    }
}
