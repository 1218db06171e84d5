using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The single writer of a checkpoint store (the learner). Holds an exclusive flock on the root for its
/// lifetime; a second writer, in this process or another, gets <see cref="CheckpointLockedException"/>.
/// Readers that only list, verify or load use <see cref="CheckpointReader"/> and need no lock.
/// <para><b>Writing a version</b> (<see cref="WriteAsync"/>): every artefact is written into
/// <c>.tmp-vNNNNNN-&lt;guid&gt;/</c>, each file fsynced, hashed by reading it back, then manifest.json and
/// its checksum manifest.sha256 are written and fsynced, the temp directory fsynced and renamed to <c>vNNNNNN/</c>, the root fsynced;
/// then the <c>latest</c> pointer is replaced atomically (temp file, fsync, rename, fsync root). The
/// pointer rename is the commit point: a crash before it leaves <c>latest</c> on the previous version
/// (a finished but uncommitted <c>vNNNNNN/</c> stays on disk as an orphan and is never loaded as
/// latest; retention removes it in time). When <see cref="WriteAsync"/> returns, the version is
/// durable and is <c>latest</c>: only then commit the offsets it absorbed to Kafka.</para>
/// <para><b>Lineage</b>: the next write's parent is the version the caller's state came from, so the
/// store must know it. Call <see cref="LoadLatestValidAsync"/> after opening (it returns nothing on an
/// empty store and you start fresh) or <see cref="StartNewLineage"/> to deliberately ignore what is
/// there. After <see cref="RollbackAsync"/> you must load again: the in-memory state no longer
/// matches <c>latest</c>. Writing without this raises <see cref="InvalidOperationException"/>.</para>
/// <para><b>Numbers never repeat</b>: a write gets max(existing) + 1, even after a rollback, so
/// history stays linear and auditable: roll back v9 → v5 and the next write is v10 with parent v5;
/// v6..v9 remain (until retention) for inspection. Pointer moves and deletions are appended to
/// <c>events.jsonl</c>.</para>
/// <para><b>Operator rollbacks while the learner runs</b> arrive as <c>rollback.request</c> (the CLI cannot
/// take the lock): call <see cref="ApplyRequestedRollbackAsync"/> at every update boundary, and reload
/// when it returns a rollback. Until it is applied, <see cref="WriteAsync"/> refuses to commit.</para>
/// <para><b>Pointers</b>: <c>good</c> is always <c>latest</c> or one of its ancestors. A rollback moves both
/// (<c>good</c> back to the target when it was newer or off the target's line), with the rollback request file
/// as its journal, so a crash half-way is completed by the next open; <see cref="LoadLatestValidAsync"/>
/// repairs a <c>good</c> that names a missing or abandoned version.</para>
/// <para><b>Retention</b> never deletes what something still needs: <c>latest</c>, <c>good</c>, the parent of
/// the next write, a pending rollback's target, versions registered with <see cref="ProtectFromRetention"/>
/// (the guardrail's promotion candidates, policies being served), and versions a reader holds
/// (<see cref="VersionLock"/>: <c>checkpoint verify</c> in another process).</para>
/// <para><b>A full disk</b> (ENOSPC, EDQUOT) is not retried blindly: the store deletes the oldest version
/// retention may delete, ignoring <see cref="CheckpointOptions.KeepLast"/>, and tries again, as long as such a
/// version exists; then the <see cref="CheckpointWriteException"/> says <see cref="CheckpointWriteException.OutOfSpace"/>.</para>
/// <para>Every I/O operation runs through the retry pipeline with a <see cref="CheckpointIoOperations"/> key
/// in its <see cref="ResilienceContext"/>, so a test can inject faults into one kind of operation.</para>
/// <para>Methods are safe to call from several threads (they run one at a time). Linux only.</para>
/// </summary>
public sealed class CheckpointStore : IDisposable, IAsyncDisposable
{
    private readonly CheckpointOptions _options;
    private readonly ResiliencePipeline _io;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly StoreLock _lock;
    private readonly CheckpointBlobs _blobs;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<(string Owner, Func<IReadOnlyCollection<long>> Versions)> _protectors = [];
    private Lineage _lineage = Lineage.Unknown;
    private long? _base;
    private Checkpoint? _resumePoint;
    private long _highestWritten;
    private bool _disposed;

    private enum Lineage
    {
        Unknown,
        Known,
        RolledBack,
    }

    private CheckpointStore(CheckpointOptions options, ResiliencePipeline io, ILogger logger, TimeProvider time, StoreLock storeLock)
    {
        _options = options;
        _io = io;
        _logger = logger;
        _time = time;
        _lock = storeLock;
        _blobs = new CheckpointBlobs(options.Directory, logger);
        Reader = new CheckpointReader(options.Directory, io, logger, _blobs.KnownGood);
    }

    /// <summary>The store's root directory.</summary>
    public string Root => _options.Directory;

    /// <summary>The validated options the store was opened with (a copy).</summary>
    public CheckpointOptions Options => new()
    {
        Directory = _options.Directory, KeepLast = _options.KeepLast, RetryCount = _options.RetryCount, RetryBaseDelay = _options.RetryBaseDelay,
        RetryMaxDelay = _options.RetryMaxDelay, Interval = _options.Interval, IntervalTime = _options.IntervalTime,
    };

    /// <summary>
    /// The newest full version (not publish-only) the caller's state descends from: the one loaded, or the last one
    /// written. A restart resumes from it; retention keeps it; a publish-only version takes its offsets. Null before a
    /// load or on a new lineage.
    /// </summary>
    public Checkpoint? ResumePoint => _resumePoint;

    /// <summary>Listing and verification without side effects (same root, same retry pipeline).</summary>
    public CheckpointReader Reader { get; }

    /// <summary>The version the next write will name as its parent (null: first of a new lineage); throws until it is known.</summary>
    public long? NextParent => _lineage == Lineage.Known ? _base : throw NotReadyToWrite();

    /// <summary>
    /// Opens the store at <see cref="CheckpointOptions.Directory"/> for writing: creates the directory if
    /// needed, takes the writer lock, and removes what a crashed writer left (temp directories, pointer
    /// temp files, half-deleted versions), noting each removal in events.jsonl.
    /// </summary>
    /// <param name="options">Validated here; an invalid value throws <see cref="ArgumentException"/>.</param>
    /// <param name="logger">Structured logs of commits, fallbacks, deletions and retries.</param>
    /// <param name="ioPipeline">Retry around I/O; defaults to <see cref="CheckpointRetry.CreatePipeline"/>.</param>
    /// <param name="timeProvider">Clock for manifest and event times.</param>
    public static async Task<CheckpointStore> OpenAsync(CheckpointOptions options, ILogger? logger = null, ResiliencePipeline? ioPipeline = null,
                                                         TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckpointOptionsValidator.ThrowIfInvalid(options);
        var snapshot = new CheckpointOptions
        {
            Directory = options.Directory,
            KeepLast = options.KeepLast,
            RetryCount = options.RetryCount,
            RetryBaseDelay = options.RetryBaseDelay,
            RetryMaxDelay = options.RetryMaxDelay,
            Interval = options.Interval,
            IntervalTime = options.IntervalTime,
        };
        logger ??= NullLogger.Instance;
        timeProvider ??= TimeProvider.System;
        var io = ioPipeline ?? CheckpointRetry.CreatePipeline(snapshot, logger);
        if (File.Exists(snapshot.Directory))
            throw new ArgumentException($"{CheckpointOptions.SectionName}:Directory {snapshot.Directory} is a file, not a directory", nameof(options));

        await RunIoAsync(io, CheckpointIoOperations.Open, _ =>
        {
            if (!Directory.Exists(snapshot.Directory))
            {
                Directory.CreateDirectory(snapshot.Directory);
                var parent = Path.GetDirectoryName(Path.GetFullPath(snapshot.Directory));
                if (parent is not null) PosixFileSystem.Fsync(parent, isDirectory: true);
            }
            return ValueTask.FromResult(true);
        }, cancellationToken);

        var storeLock = StoreLock.Acquire(snapshot.Directory, timeProvider);
        try
        {
            var store = new CheckpointStore(snapshot, io, logger, timeProvider, storeLock);
            await RunIoAsync(io, CheckpointIoOperations.Cleanup, _ =>
            {
                store.RemoveLeftovers();
                return ValueTask.FromResult(true);
            }, cancellationToken);
            await store.CollectUnreferencedBlobsAsync(cancellationToken);
            return store;
        }
        catch
        {
            storeLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads what to resume from (see <see cref="CheckpointReader.LoadLatestValidAsync"/>: latest, or the
    /// newest valid version on its lineage, with what was skipped and why) and records it as the parent
    /// of the next write. On an empty store it returns no checkpoint and the next write starts a lineage.
    /// A pending operator rollback (<c>rollback.request</c>) is applied first.
    /// If versions exist but none is valid, nothing is loaded, and the next write starts a new lineage:
    /// inspect <see cref="CheckpointLoadResult.Skipped"/> and decide (the worker's policy: log, count, continue).
    /// A <c>good</c> pointer that names a missing or invalid version, or one off the loaded version's line (an
    /// abandoned version, left by an older build's rollback), is moved to the newest valid version on the
    /// loaded line not newer than it (or removed when there is none); the repair is in
    /// <see cref="CheckpointLoadResult.Warnings"/> and events.jsonl.
    /// </summary>
    public async Task<CheckpointLoadResult> LoadLatestValidAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        try
        {
            await ApplyRequestedRollbackCoreAsync(cancellationToken);
            var result = await Reader.LoadLatestValidAsync(cancellationToken);
            _base = result.Checkpoint?.Version;
            _resumePoint = result.Checkpoint;
            _lineage = Lineage.Known;
            if (result.Checkpoint is { } loaded && await RepairGoodCoreAsync(loaded.Version, cancellationToken) is { } repair)
                result = result with { Warnings = [.. result.Warnings, repair] };
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Declares that the caller's state does not come from any stored version (e.g. an operator chose
    /// to retrain from scratch): the next write has no parent. Existing versions are kept.
    /// </summary>
    public void StartNewLineage()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _gate.Wait();
        try
        {
            _base = null;
            _resumePoint = null;
            _lineage = Lineage.Known;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Writes a new version atomically and makes it <c>latest</c>; then applies retention. Transient I/O
    /// faults retry the whole version from a fresh temp directory (writers run again, see
    /// <see cref="CheckpointDraft"/>); when retries run out, <see cref="CheckpointWriteException"/> and
    /// <c>latest</c> is unchanged. A writer's own non-I/O exception propagates at once, nothing written.
    /// Cancellation is honoured until the version directory is in place; after that the commit finishes.
    /// </summary>
    /// <returns>The committed checkpoint (its files were hashed by reading them back).</returns>
    public async Task<Checkpoint> WriteAsync(CheckpointDraft draft, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (draft.Artefacts.Count == 0) throw new ArgumentException("a checkpoint needs at least one artefact", nameof(draft));
        await EnterAsync(cancellationToken);
        try
        {
            if (_lineage != Lineage.Known) throw NotReadyToWrite();
            if (RollbackRequestFile.Exists(Root))
                throw new InvalidOperationException($"an operator requested a rollback in {Root} ({RollbackRequestFile.PathIn(Root)}); call ApplyRequestedRollbackAsync() and reload before writing");
            var previousLatest = Reader.ReadPointers().Latest;
            var version = NextVersion();
            var manifestBase = new CheckpointManifest
            {
                FormatVersion = CheckpointManifest.CurrentFormatVersion,
                Version = version,
                Parent = _base,
                Created = TruncateToMilliseconds(_time.GetUtcNow()), // what the manifest can hold: returned == reloaded
                ConfigHash = draft.ConfigHash,
                Offsets = draft.SnapshotOffsets(),
                Metrics = draft.SnapshotMetrics(),
                Files = new SortedDictionary<string, CheckpointFileEntry>(StringComparer.Ordinal),
                PublishOnly = draft.IsPublishOnly,
            };

            var attempts = 0;
            CheckpointManifest manifest;
            try
            {
                while (true)
                {
                    try
                    {
                        manifest = await WriteVersionAsync();
                        break;
                    }
                    catch (IOException e) when (PosixFileSystem.IsOutOfSpace(e))
                    {
                        // Retrying into a full disk cannot help; deleting what retention may delete can. KeepLast is a
                        // wish for history, a durable checkpoint is the learner's promise: delete the oldest version
                        // nothing needs and try again, as long as there is one.
                        if (!await FreeSpaceCoreAsync(e, CancellationToken.None)) throw;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _highestWritten = Math.Max(_highestWritten, version); // the number may be half-used; never reuse it
                var full = PosixFileSystem.IsOutOfSpace(e);
                throw new CheckpointWriteException(
                    $"checkpoint {CheckpointVersion.DirectoryName(version)} could not be written to {Root} after {attempts} attempt(s){(full ? " (the device is full, even after retention made what room it could)" : "")}; latest is still {Describe(previousLatest)}: {e.Message}",
                    version, previousLatest, attempts, e) { OutOfSpace = full };
            }
            _highestWritten = Math.Max(_highestWritten, version);

            // Commit point. Not cancellable: the directory is in place, finishing takes milliseconds,
            // and a cancelled commit would only leave an orphan behind.
            attempts = 0;
            try
            {
                await RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
                {
                    attempts++;
                    PointerFile.WriteAtomic(Root, CheckpointLayout.LatestPointer, version);
                    return ValueTask.FromResult(true);
                }, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointWriteException(
                    $"checkpoint {CheckpointVersion.DirectoryName(version)} was written but the 'latest' pointer could not be moved after {attempts} attempt(s); latest is still {Describe(previousLatest)}: {e.Message}",
                    version, previousLatest, attempts, e) { OutOfSpace = PosixFileSystem.IsOutOfSpace(e) };
            }
            _base = version;
            var committed = new Checkpoint(Root, manifest);
            if (!manifest.PublishOnly) _resumePoint = committed;
            _logger.LogInformation("Committed checkpoint {Version} (parent {Parent}, {Files} files, {Bytes} bytes of its own, {SharedBytes} bytes in shared blobs) in {Root}",
                CheckpointVersion.DirectoryName(version), Describe(manifest.Parent), manifest.Files.Count, manifest.OwnBytes, manifest.TotalBytes - manifest.OwnBytes, Root);
            AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.Commit, Version = version, Parent = manifest.Parent });

            try
            {
                await ApplyRetentionCoreAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The checkpoint is committed; a failed cleanup costs disk, not correctness. Next write retries it.
                _logger.LogWarning(e, "Retention after checkpoint {Version} failed in {Root}; will retry after the next write", CheckpointVersion.DirectoryName(version), Root);
            }
            return committed;

            Task<CheckpointManifest> WriteVersionAsync() => RunIoAsync(_io, CheckpointIoOperations.WriteVersion, async token =>
            {
                attempts++;
                return await WriteVersionDirectoryAsync(manifestBase, draft, token);
            }, cancellationToken).AsTask();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Registers versions something else still needs (read at every retention run, from any thread): the
    /// guardrail's promotion candidates, the policies being served to generators. Retention never deletes them.
    /// </summary>
    public void ProtectFromRetention(string owner, Func<IReadOnlyCollection<long>> versions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(owner);
        ArgumentNullException.ThrowIfNull(versions);
        lock (_protectors) _protectors.Add((owner, versions));
    }

    /// <summary>
    /// The number the next <see cref="WriteAsync"/> will give its version (one above every version on disk,
    /// both pointers and every number used before). For callers that must name a version before writing it:
    /// the worker's guardrail judges an update, by the version it would become, before it is checkpointed.
    /// </summary>
    public long PeekNextVersion() => NextVersion();

    /// <summary>
    /// Moves <c>good</c> to <paramref name="version"/> after verifying it in full, so <c>good</c> never names
    /// a version that does not verify. This is the guardrail's promotion and only moves forward along
    /// <c>latest</c>'s line: a version older than the current <c>good</c>, or one that is not <c>latest</c> or an
    /// ancestor of it (an abandoned version), is refused (<see cref="ArgumentException"/>); the same version is
    /// a no-op. <c>good</c> moves back only with a rollback (<see cref="RollbackAsync"/>).
    /// </summary>
    /// <exception cref="CheckpointCorruptException">The version is missing or does not verify.</exception>
    public async Task MarkGoodAsync(long version, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, CheckpointVersion.First);
        await EnterAsync(cancellationToken);
        try
        {
            var pointers = Reader.ReadPointers();
            var current = pointers.Good;
            if (current == version) return;
            if (current > version)
                throw new ArgumentException($"'good' is {CheckpointVersion.DirectoryName(current.Value)} and only moves forward; refusing to mark the older {CheckpointVersion.DirectoryName(version)} (a rollback moves it back)", nameof(version));
            var verdict = await Reader.VerifyAsync(version, CheckpointVerificationLevel.Full, cancellationToken);
            if (!verdict.IsValid) throw new CheckpointCorruptException(Root, version, verdict.Problems);
            if (verdict.Manifest!.PublishOnly)
                throw new ArgumentException($"{CheckpointVersion.DirectoryName(version)} is publish-only (a policy published between checkpoints, no state to resume): only a checkpoint becomes good", nameof(version));
            if (pointers.Latest is { } latest && !await new CheckpointLineage(Root).IsOnLineOfAsync(version, latest, cancellationToken))
                throw new ArgumentException($"{CheckpointVersion.DirectoryName(version)} is not on the line of latest ({CheckpointVersion.DirectoryName(latest)}): a rolled-back (abandoned) version never becomes good", nameof(version));
            await MoveGoodCoreAsync(current, version, reason: null);
            _logger.LogInformation("Marked checkpoint {Version} good in {Root} (was {Previous})", CheckpointVersion.DirectoryName(version), Root, Describe(current));
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Points <c>latest</c> at an existing, fully verified version: <paramref name="toVersion"/>, or
    /// <c>good</c> when null, and moves <c>good</c> back with it when <c>good</c> was newer than the target or
    /// not on its line (so a later rollback to <c>good</c> never returns to the abandoned versions). Deletes
    /// nothing; newer versions stay for inspection until retention. The next write gets max(existing) + 1
    /// with parent = the target. The two pointer moves are journalled (<c>rollback.request</c> is written
    /// first and removed last; <c>good</c> moves before <c>latest</c>), so a crash in between leaves
    /// <c>good</c> on <c>latest</c>'s line and the next open completes the rollback. Records a
    /// <c>mark_good</c> event (when <c>good</c> moved) and a <c>rollback</c> event with <paramref name="reason"/>.
    /// Afterwards the caller must <see cref="LoadLatestValidAsync"/> before writing again (its in-memory
    /// state is the rolled-back-away one). Any valid version may be named, also one newer than
    /// <c>latest</c> (to undo a rollback).
    /// </summary>
    /// <exception cref="InvalidOperationException">No target given and no <c>good</c> pointer exists.</exception>
    /// <exception cref="CheckpointCorruptException">The target is missing or does not verify.</exception>
    public async Task<CheckpointRollback> RollbackAsync(long? toVersion, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        if (toVersion is { } explicitVersion) ArgumentOutOfRangeException.ThrowIfLessThan(explicitVersion, CheckpointVersion.First);
        await EnterAsync(cancellationToken);
        try
        {
            return await RollbackCoreAsync(toVersion, reason, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Applies an operator's pending <c>rollback.request</c> (see <see cref="CheckpointRollbackRequest"/>), if
    /// any. Call it at every update boundary; when it returns a rollback, reload with
    /// <see cref="LoadLatestValidAsync"/> and rebuild the state before training on. A request that cannot
    /// be applied (target missing or corrupt, unreadable file) is dropped, logged as an error and recorded
    /// as a rollback_refused event: an operator's typo must not stop the learner. Returns null then, and
    /// when nothing was pending or the target already was <c>latest</c>.
    /// </summary>
    public async Task<CheckpointRollback?> ApplyRequestedRollbackAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        try
        {
            return await ApplyRequestedRollbackCoreAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Leaves a rollback request for the learner that holds <paramref name="directory"/>'s lock (used by the
    /// CLI when the store is in use). The target (<paramref name="toVersion"/>, or <c>good</c> when null) is
    /// verified now, so a request is only left for a version that can be applied; the learner verifies it
    /// again. A newer request replaces a pending one.
    /// </summary>
    /// <exception cref="InvalidOperationException">No target given and no <c>good</c> pointer exists.</exception>
    /// <exception cref="CheckpointCorruptException">The target is missing or does not verify.</exception>
    public static async Task<CheckpointRollbackRequest> RequestRollbackAsync(string directory, long? toVersion, string reason, TimeProvider? timeProvider = null,
                                                                           ResiliencePipeline? ioPipeline = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var reader = new CheckpointReader(directory, ioPipeline);
        var target = toVersion ?? reader.ReadPointers().Good
            ?? throw new InvalidOperationException($"no 'good' version is recorded in {directory}; name the version to roll back to");
        var verdict = await reader.VerifyAsync(target, CheckpointVerificationLevel.Full, cancellationToken);
        if (!verdict.IsValid) throw new CheckpointCorruptException(directory, target, verdict.Problems);
        if (verdict.Manifest!.PublishOnly) throw new CheckpointCorruptException(directory, target, [PublishOnlyTarget]);
        var request = new CheckpointRollbackRequest
        {
            To = target,
            Reason = reason,
            Time = TruncateToMilliseconds((timeProvider ?? TimeProvider.System).GetUtcNow()),
            User = Environment.UserName,
            Host = Environment.MachineName,
            ProcessId = Environment.ProcessId,
        };
        RollbackRequestFile.WriteAtomic(directory, request);
        return request;
    }

    private async Task<CheckpointRollback?> ApplyRequestedRollbackCoreAsync(CancellationToken ct)
    {
        if (!RollbackRequestFile.Exists(Root)) return null;
        var (request, problem) = RollbackRequestFile.Read(Root);
        CheckpointRollback? outcome = null;
        string? refusal = problem;
        if (request is not null)
        {
            try
            {
                outcome = await RollbackCoreAsync(request.To, $"{request.Reason} (requested by {request.User ?? "?"}@{request.Host ?? "?"} at {request.Time:yyyy-MM-ddTHH:mm:ssZ})", ct, journalled: true);
            }
            catch (CheckpointCorruptException e)
            {
                refusal = e.Message;
            }
        }
        if (refusal is not null)
        {
            _logger.LogError("Refused the requested rollback in {Root}: {Reason}", Root, refusal);
            AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.RollbackRefused, To = request?.To, Reason = refusal });
            await DeleteRequestAsync();
        }
        return outcome is { Changed: true } ? outcome : null;
    }

    /// <param name="journalled">True when <c>rollback.request</c> already holds this rollback (an operator's request, or a journal left by a crash).</param>
    private async Task<CheckpointRollback> RollbackCoreAsync(long? toVersion, string reason, CancellationToken ct, bool journalled = false)
    {
        var pointers = Reader.ReadPointers();
        var target = toVersion ?? pointers.Good
            ?? throw new InvalidOperationException($"no 'good' version is recorded in {Root}; name the version to roll back to");
        var verdict = await Reader.VerifyAsync(target, CheckpointVerificationLevel.Full, ct);
        if (!verdict.IsValid) throw new CheckpointCorruptException(Root, target, verdict.Problems);
        if (verdict.Manifest!.PublishOnly) throw new CheckpointCorruptException(Root, target, [PublishOnlyTarget]);
        var now = _time.GetUtcNow();
        // good stays where it is when it is the target or one of its ancestors; otherwise (newer than the target,
        // or on another line) it would name a version the rolled-back store has abandoned.
        // A store without `good` keeps none: a rollback does not vouch for its target.
        var goodAfter = pointers.Good is not { } good || await new CheckpointLineage(Root).IsOnLineOfAsync(good, target, ct) ? pointers.Good : target;
        if (pointers.Latest == target && pointers.Good == goodAfter)
        {
            if (journalled) await DeleteRequestAsync();
            return new CheckpointRollback(target, target, reason, now, Changed: false, NextVersion(), pointers.Good, goodAfter);
        }

        // The journal first: from here a crash is completed by the next LoadLatestValidAsync. A pending request
        // is replaced, as a newer request replaces an older one (the learner applies requests before its own rollbacks).
        if (!journalled)
        {
            if (Reader.ReadRollbackRequest().Request is { } pending)
                _logger.LogWarning("Rollback to {Target} replaces the pending {Request}", CheckpointVersion.DirectoryName(target), pending.ToString());
            var intent = new CheckpointRollbackRequest
            {
                To = target, Reason = reason, Time = TruncateToMilliseconds(now),
                User = Environment.UserName, Host = Environment.MachineName, ProcessId = Environment.ProcessId,
            };
            await RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
            {
                RollbackRequestFile.WriteAtomic(Root, intent);
                return ValueTask.FromResult(true);
            }, CancellationToken.None);
        }
        // good before latest: in between, good is the target, an ancestor of the old latest's line or on it.
        if (goodAfter is { } movedTo && pointers.Good != movedTo) await MoveGoodCoreAsync(pointers.Good, movedTo, $"moved back with latest by the rollback to {CheckpointVersion.DirectoryName(target)}: {reason}");
        if (pointers.Latest != target)
        {
            await RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
            {
                PointerFile.WriteAtomic(Root, CheckpointLayout.LatestPointer, target);
                return ValueTask.FromResult(true);
            }, CancellationToken.None);
        }
        _lineage = Lineage.RolledBack;
        _base = null;
        _resumePoint = null;
        _logger.LogWarning("Rolled back checkpoint store {Root}: latest {From} -> {To}, good {GoodFrom} -> {GoodTo} ({Reason})",
            Root, Describe(pointers.Latest), CheckpointVersion.DirectoryName(target), Describe(pointers.Good), Describe(goodAfter), reason);
        AppendEventBestEffort(new CheckpointEvent { Time = now, Kind = CheckpointEventKind.Rollback, From = pointers.Latest, To = target, Reason = reason });
        await DeleteRequestAsync();
        return new CheckpointRollback(pointers.Latest, target, reason, now, Changed: true, NextVersion(), pointers.Good, goodAfter);
    }

    /// <summary>Writes the <c>good</c> pointer (the caller verified the version) and records the move.</summary>
    private async Task MoveGoodCoreAsync(long? from, long to, string? reason)
    {
        await RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
        {
            PointerFile.WriteAtomic(Root, CheckpointLayout.GoodPointer, to);
            return ValueTask.FromResult(true);
        }, CancellationToken.None);
        AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.MarkGood, From = from, To = to, Reason = reason });
    }

    private Task DeleteRequestAsync() => RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
    {
        RollbackRequestFile.Delete(Root);
        return ValueTask.FromResult(true);
    }, CancellationToken.None).AsTask();

    /// <summary>
    /// After a load of <paramref name="loaded"/>: <c>good</c> must name a valid version on the loaded line.
    /// Returns a warning when it had to be repaired (moved back, or removed when no valid version qualifies).
    /// </summary>
    private async Task<string?> RepairGoodCoreAsync(long loaded, CancellationToken ct)
    {
        var (good, problem) = PointerFile.Read(Root, CheckpointLayout.GoodPointer);
        if (good is null && problem is null) return null; // never marked: nothing to repair
        var lineage = new CheckpointLineage(Root);
        string why;
        if (good is not { } named) why = problem!;
        else if (!await lineage.IsOnLineOfAsync(named, loaded, ct))
            why = $"'good' named {CheckpointVersion.DirectoryName(named)}, which is not on the line of the loaded {CheckpointVersion.DirectoryName(loaded)} (abandoned by a rollback, or newer than a fallback)";
        else if (await Reader.VerifyAsync(named, CheckpointVerificationLevel.Quick, ct) is { IsValid: false } verdict)
            why = $"'good' named {CheckpointVersion.DirectoryName(named)}, which is invalid: {verdict.Reason}";
        else return null;

        // The newest valid version on the loaded line that is not newer than what good named.
        var ceiling = good ?? loaded;
        var (line, _) = await lineage.LineOfAsync(loaded, ct);
        foreach (var candidate in line.Where(v => v <= ceiling))
        {
            if (!(await Reader.VerifyAsync(candidate, CheckpointVerificationLevel.Full, ct)).IsValid) continue;
            await MoveGoodCoreAsync(good, candidate, "repair at load: " + why);
            var repaired = $"{why}; 'good' moved to {CheckpointVersion.DirectoryName(candidate)}, the newest valid version on the loaded line not newer than it";
            _logger.LogError("Checkpoint store {Root} was inconsistent: {Repair}", Root, repaired);
            return repaired;
        }
        await RunIoAsync(_io, CheckpointIoOperations.MovePointer, _ =>
        {
            File.Delete(Path.Combine(Root, CheckpointLayout.GoodPointer));
            PosixFileSystem.Fsync(Root, isDirectory: true);
            return ValueTask.FromResult(true);
        }, CancellationToken.None);
        AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.MarkGood, From = good, Reason = "repair at load: " + why + "; no valid version on the loaded line qualifies, pointer removed" });
        var removed = $"{why}; no valid version on the loaded line qualifies, so 'good' was removed (a rollback trip pauses until a version qualifies)";
        _logger.LogError("Checkpoint store {Root} was inconsistent: {Repair}", Root, removed);
        return removed;
    }

    /// <summary>
    /// Deletes versions beyond the newest <see cref="CheckpointOptions.KeepLast"/>, never one something still
    /// needs (<see cref="ProtectedVersions"/>) nor one a reader holds (it is tried again after the next write).
    /// Runs after every write; call it yourself only after lowering KeepLast. Each version is renamed to
    /// <c>.deleting-…</c> first, so it disappears atomically even if the deletion itself is interrupted.
    /// Returns the deleted versions.
    /// </summary>
    public async Task<IReadOnlyList<long>> ApplyRetentionAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        try
        {
            return await ApplyRetentionCoreAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// What retention must keep whatever KeepLast says: <c>latest</c>, <c>good</c>, the parent of the next
    /// write, the target of a pending rollback request, and what <see cref="ProtectFromRetention"/> registered.
    /// </summary>
    public IReadOnlySet<long> ProtectedVersions()
    {
        var keep = new HashSet<long>();
        var pointers = Reader.ReadPointers();
        if (pointers.Latest is { } latest) keep.Add(latest);
        if (pointers.Good is { } good) keep.Add(good);
        if (_base is { } parentOfNext) keep.Add(parentOfNext);
        if (_resumePoint is { } resume) keep.Add(resume.Version); // what a restart resumes from while publish-only versions follow it
        if (Reader.ReadRollbackRequest().Request is { } request) keep.Add(request.To);
        List<(string Owner, Func<IReadOnlyCollection<long>> Versions)> protectors;
        lock (_protectors) protectors = [.. _protectors];
        foreach (var (_, versions) in protectors) keep.UnionWith(versions());
        return keep;
    }
    /// <summary>
    /// Waits for an operation in flight to finish (the lock is never released mid-write), then releases
    /// the writer lock. Later calls throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _gate.Wait();
        ReleaseLock();
    }

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        await _gate.WaitAsync();
        ReleaseLock();
    }

    private void ReleaseLock()
    {
        try
        {
            if (_disposed) return;
            _disposed = true;
            _lock.Dispose();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<CheckpointManifest> WriteVersionDirectoryAsync(CheckpointManifest manifestBase, CheckpointDraft draft, CancellationToken ct)
    {
        var name = CheckpointVersion.DirectoryName(manifestBase.Version);
        var temp = Path.Combine(Root, $"{CheckpointLayout.TempDirectoryPrefix}{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var shared = new Dictionary<string, CheckpointFileEntry>(StringComparer.Ordinal);
            foreach (var artefact in draft.Artefacts)
            {
                ct.ThrowIfCancellationRequested();
                var path = Path.Combine(temp, artefact.Name);
                if (artefact.SharedSource is { } source)
                {
                    // The blob is durable before the version that names it can become visible (the temp directory is
                    // renamed only after this loop), so a committed version never references a blob still being written.
                    var entry = shared[artefact.Name] = await _blobs.StoreAsync(source, ct);
                    await _blobs.LinkAsync(entry.Sha256, path, ct);
                    continue;
                }
                await artefact.WriteToPath(path, ct);
                if (!File.Exists(path))
                    throw new InvalidOperationException($"the writer for '{artefact.Name}' returned without creating the file");
            }
            var expected = draft.Artefacts.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
            var stray = Directory.EnumerateFileSystemEntries(temp).Select(Path.GetFileName).OfType<string>().Where(n => !expected.Contains(n)).Order(StringComparer.Ordinal).ToList();
            if (stray.Count > 0)
                throw new InvalidOperationException($"the artefact writers left files that are not artefacts: {string.Join(", ", stray)}");

            var files = new SortedDictionary<string, CheckpointFileEntry>(StringComparer.Ordinal);
            foreach (var artefact in draft.Artefacts)
            {
                if (shared.TryGetValue(artefact.Name, out var blob))
                {
                    files[artefact.Name] = blob; // hashed once when its blob was written or first verified by this process
                    continue;
                }
                var path = Path.Combine(temp, artefact.Name);
                PosixFileSystem.Fsync(path, isDirectory: false);
                var size = new FileInfo(path).Length;
                var sha = await CheckpointVerifier.Sha256HexAsync(path, ct)
                          ?? throw new IOException($"'{artefact.Name}' vanished from {temp} while it was being hashed");
                files[artefact.Name] = new CheckpointFileEntry(sha, size);
            }

            var manifest = manifestBase with { Files = files };
            var manifestBytes = CheckpointJson.SerializeManifest(manifest);
            await WriteDurablyAsync(Path.Combine(temp, CheckpointLayout.ManifestFileName), manifestBytes, ct);
            await WriteDurablyAsync(Path.Combine(temp, CheckpointLayout.ManifestChecksumFileName), ManifestChecksum.Format(manifestBytes), ct);
            PosixFileSystem.Fsync(temp, isDirectory: true);
            ct.ThrowIfCancellationRequested();
            Directory.Move(temp, Path.Combine(Root, name)); // rename(2): the version appears whole or not at all
            PosixFileSystem.Fsync(Root, isDirectory: true);
            return manifest;
        }
        catch
        {
            TryDeleteDirectory(temp);
            throw;
        }
    }

    private static async Task WriteDurablyAsync(string path, byte[] content, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        await file.WriteAsync(content, ct);
        file.Flush(flushToDisk: true);
    }

    private async Task<IReadOnlyList<long>> ApplyRetentionCoreAsync(CancellationToken ct)
    {
        var versions = Reader.ListVersions();
        var keep = ProtectedVersions().ToHashSet();
        keep.UnionWith(versions.TakeLast(_options.KeepLast));
        var deleted = new List<long>();
        try
        {
            foreach (var version in versions.Where(v => !keep.Contains(v)))
            {
                ct.ThrowIfCancellationRequested();
                if (await DeleteVersionAsync(version, $"retention: keep last {_options.KeepLast}", ct)) deleted.Add(version);
            }
        }
        finally
        {
            if (deleted.Count > 0) await CollectUnreferencedBlobsAsync(CancellationToken.None);
        }
        return deleted;
    }

    /// <summary>
    /// The device is full: deletes the oldest version retention may delete at all (KeepLast aside; never one
    /// <see cref="ProtectedVersions"/> names or a reader holds). False when there is none left.
    /// </summary>
    private async Task<bool> FreeSpaceCoreAsync(IOException cause, CancellationToken ct)
    {
        var keep = ProtectedVersions();
        foreach (var version in Reader.ListVersions().Where(v => !keep.Contains(v)))
        {
            if (!await DeleteVersionAsync(version, $"the device is full ({cause.Message}): making room for the next checkpoint, KeepLast aside", ct)) continue;
            await CollectUnreferencedBlobsAsync(ct);
            _logger.LogWarning("Checkpoint store {Root} is full: deleted {Version}, the oldest version nothing needs, to make room", Root, CheckpointVersion.DirectoryName(version));
            return true;
        }
        _logger.LogError("Checkpoint store {Root} is full and every version on disk is still needed (latest, good, promotion candidates, served or pinned versions): nothing to delete", Root);
        return false;
    }

    /// <summary>Deletes one version unless a reader holds it (then false). Renamed first, so it vanishes atomically.</summary>
    private async Task<bool> DeleteVersionAsync(long version, string reason, CancellationToken ct)
    {
        var name = CheckpointVersion.DirectoryName(version);
        var (outcome, exclusive) = VersionLock.TryAcquire(Root, version, exclusive: true);
        using (exclusive)
        {
            if (outcome == VersionLock.Outcome.Busy)
            {
                _logger.LogInformation("Retention kept checkpoint {Version} in {Root}: a reader holds it (checkpoint verify, a load); tried again after the next write", name, Root);
                return false;
            }
            await RunIoAsync(_io, CheckpointIoOperations.Retention, _ =>
            {
                var doomed = Path.Combine(Root, $"{CheckpointLayout.DeletingDirectoryPrefix}{name}-{Guid.NewGuid():N}");
                Directory.Move(Path.Combine(Root, name), doomed);
                PosixFileSystem.Fsync(Root, isDirectory: true);
                Directory.Delete(doomed, recursive: true);
                return ValueTask.FromResult(true);
            }, ct);
        }
        _logger.LogInformation("Deleted checkpoint {Version} from {Root} ({Reason})", name, Root, reason);
        AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.Delete, Version = version, Reason = reason });
        return true;
    }

    /// <summary>
    /// Removes every blob no version directory on disk lists as shared. Runs under the writer lock, after the versions
    /// it would free are gone (renamed away, then deleted), so a blob a remaining version needs is never touched, and a
    /// crash part-way leaves at worst unreferenced blobs, which the next run (the next open, the next deletion) removes.
    /// A version whose manifest cannot be parsed might reference any blob: then nothing is removed until retention has
    /// deleted it (logged). Returns the removed blobs.
    /// </summary>
    private async Task<IReadOnlyList<string>> CollectUnreferencedBlobsAsync(CancellationToken ct)
    {
        var blobs = _blobs.List();
        if (blobs.Count == 0) return [];
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var version in Reader.ListVersions())
        {
            var manifestPath = Path.Combine(CheckpointLayout.VersionPath(Root, version), CheckpointLayout.ManifestFileName);
            CheckpointManifest manifest;
            try
            {
                // Parsed without its checksum on purpose: a damaged manifest that still parses names what it references.
                manifest = CheckpointJson.DeserializeManifest(await File.ReadAllBytesAsync(manifestPath, ct));
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or IOException)
            {
                if (!Directory.Exists(CheckpointLayout.VersionPath(Root, version))) continue; // deleted meanwhile (only this writer deletes: not expected)
                _logger.LogWarning("Kept every blob in {Root}: the manifest of {Version} cannot be read ({Error}), so what it references is unknown; unreferenced blobs are removed once it is gone",
                    Root, CheckpointVersion.DirectoryName(version), e.Message);
                return [];
            }
            foreach (var entry in manifest.Files.Values.Where(f => f.Shared)) referenced.Add(entry.Sha256);
        }
        var removed = new List<string>();
        foreach (var blob in blobs.Where(b => !referenced.Contains(b)))
        {
            await RunIoAsync(_io, CheckpointIoOperations.Retention, _ =>
            {
                _blobs.Delete(blob);
                return ValueTask.FromResult(true);
            }, ct);
            removed.Add(blob);
        }
        if (removed.Count == 0) return removed;
        await RunIoAsync(_io, CheckpointIoOperations.Retention, _ =>
        {
            PosixFileSystem.Fsync(_blobs.Directory, isDirectory: true);
            return ValueTask.FromResult(true);
        }, ct);
        _logger.LogInformation("Removed {Count} blob(s) from {Root} that no version references any more: {Blobs}", removed.Count, Root, string.Join(", ", removed));
        AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.Cleanup, Reason = $"removed blob(s) no version references: {string.Join(", ", removed)}" });
        return removed;
    }

    /// <summary>One I/O operation through the retry pipeline, its <see cref="CheckpointIoOperations"/> key in the context.</summary>
    private static async ValueTask<T> RunIoAsync<T>(ResiliencePipeline io, string operation, Func<CancellationToken, ValueTask<T>> action, CancellationToken ct)
    {
        var context = ResilienceContextPool.Shared.Get(operation, ct);
        try
        {
            return await io.ExecuteAsync(static (context, action) => action(context.CancellationToken), context, action);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private void RemoveLeftovers()
    {
        foreach (var name in Reader.FindLeftovers().Concat(_blobs.FindLeftovers()))
        {
            var path = Path.Combine(Root, name);
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            else File.Delete(path);
            _logger.LogWarning("Removed {Leftover} from {Root}: left by an interrupted write or deletion", name, Root);
            AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.Cleanup, Reason = $"removed {name} left by an interrupted write or deletion" });
        }
    }

    /// <summary>max(everything ever seen) + 1, so a number is never reused, even one whose write failed.</summary>
    private long NextVersion()
    {
        var pointers = Reader.ReadPointers();
        var highest = new[] { Reader.ListVersions().LastOrDefault(), pointers.Latest ?? 0, pointers.Good ?? 0, _highestWritten }.Max();
        return highest + 1;
    }

    private void AppendEventBestEffort(CheckpointEvent entry)
    {
        try
        {
            CheckpointEventLog.Append(Root, entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The audit log must not fail a commit that already happened; the log line below is the record.
            _logger.LogWarning(e, "Could not append {Kind} to {Root}/events.jsonl", entry.Kind, Root);
        }
    }

    private async Task EnterAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _gate.WaitAsync(ct);
        if (_disposed)
        {
            _gate.Release();
            throw new ObjectDisposedException(nameof(CheckpointStore));
        }
    }

    private const string PublishOnlyTarget = "it is publish-only (a policy published between checkpoints holds no state to resume): roll back to a checkpoint (`prefonline checkpoint list`)";

    private InvalidOperationException NotReadyToWrite() => _lineage == Lineage.RolledBack
        ? new InvalidOperationException($"checkpoint store {Root} was rolled back; call LoadLatestValidAsync() and rebuild the state from it before writing")
        : new InvalidOperationException($"checkpoint store {Root}: call LoadLatestValidAsync() (to resume) or StartNewLineage() (to start over) before the first write, so the new version's parent is known");

    private static DateTimeOffset TruncateToMilliseconds(DateTimeOffset time) =>
        new(time.UtcTicks - time.UtcTicks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);

    private static string Describe(long? version) => version is { } v ? CheckpointVersion.DirectoryName(v) : "none";

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the next writer's start-up cleanup; it is invisible to readers meanwhile.
        }
    }
}
