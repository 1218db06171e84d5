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
/// <para>Methods are safe to call from several threads (they run one at a time). Linux only.</para>
/// </summary>
public sealed class CheckpointStore : IDisposable, IAsyncDisposable
{
    private readonly CheckpointOptions _options;
    private readonly ResiliencePipeline _io;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly StoreLock _lock;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Lineage _lineage = Lineage.Unknown;
    private long? _base;
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
        Reader = new CheckpointReader(options.Directory, io, logger);
    }

    /// <summary>The store's root directory.</summary>
    public string Root => _options.Directory;

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
        };
        logger ??= NullLogger.Instance;
        timeProvider ??= TimeProvider.System;
        var io = ioPipeline ?? CheckpointRetry.CreatePipeline(snapshot, logger);
        if (File.Exists(snapshot.Directory))
            throw new ArgumentException($"{CheckpointOptions.SectionName}:Directory {snapshot.Directory} is a file, not a directory", nameof(options));

        await io.ExecuteAsync(_ =>
        {
            if (!Directory.Exists(snapshot.Directory))
            {
                Directory.CreateDirectory(snapshot.Directory);
                var parent = Path.GetDirectoryName(Path.GetFullPath(snapshot.Directory));
                if (parent is not null) PosixFileSystem.Fsync(parent, isDirectory: true);
            }
            return ValueTask.CompletedTask;
        }, cancellationToken);

        var storeLock = StoreLock.Acquire(snapshot.Directory, timeProvider);
        try
        {
            var store = new CheckpointStore(snapshot, io, logger, timeProvider, storeLock);
            await io.ExecuteAsync(_ =>
            {
                store.RemoveLeftovers();
                return ValueTask.CompletedTask;
            }, cancellationToken);
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
    /// </summary>
    public async Task<CheckpointLoadResult> LoadLatestValidAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        try
        {
            await ApplyRequestedRollbackCoreAsync(cancellationToken);
            var result = await Reader.LoadLatestValidAsync(cancellationToken);
            _base = result.Checkpoint?.Version;
            _lineage = Lineage.Known;
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
            };

            var attempts = 0;
            CheckpointManifest manifest;
            try
            {
                manifest = await _io.ExecuteAsync(async token =>
                {
                    attempts++;
                    return await WriteVersionDirectoryAsync(manifestBase, draft, token);
                }, cancellationToken);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _highestWritten = Math.Max(_highestWritten, version); // the number may be half-used; never reuse it
                throw new CheckpointWriteException(
                    $"checkpoint {CheckpointVersion.DirectoryName(version)} could not be written to {Root} after {attempts} attempt(s); latest is still {Describe(previousLatest)}: {e.Message}",
                    version, previousLatest, attempts, e);
            }
            _highestWritten = Math.Max(_highestWritten, version);

            // Commit point. Not cancellable: the directory is in place, finishing takes milliseconds,
            // and a cancelled commit would only leave an orphan behind.
            attempts = 0;
            try
            {
                await _io.ExecuteAsync(_ =>
                {
                    attempts++;
                    PointerFile.WriteAtomic(Root, CheckpointLayout.LatestPointer, version);
                    return ValueTask.CompletedTask;
                }, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointWriteException(
                    $"checkpoint {CheckpointVersion.DirectoryName(version)} was written but the 'latest' pointer could not be moved after {attempts} attempt(s); latest is still {Describe(previousLatest)}: {e.Message}",
                    version, previousLatest, attempts, e);
            }
            _base = version;
            _logger.LogInformation("Committed checkpoint {Version} (parent {Parent}, {Files} files, {Bytes} bytes) in {Root}",
                CheckpointVersion.DirectoryName(version), Describe(manifest.Parent), manifest.Files.Count, manifest.TotalBytes, Root);
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
            return new Checkpoint(Root, manifest);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The number the next <see cref="WriteAsync"/> will give its version (one above every version on disk,
    /// both pointers and every number used before). For callers that must name a version before writing it:
    /// the worker's guardrail judges an update, by the version it would become, before it is checkpointed.
    /// </summary>
    public long PeekNextVersion() => NextVersion();

    /// <summary>
    /// Moves <c>good</c> to <paramref name="version"/> after verifying it in full, so <c>good</c> never names
    /// a version that does not verify. <c>good</c> only moves forward: a version older than the current
    /// <c>good</c> is refused (<see cref="ArgumentException"/>); the same version is a no-op.
    /// </summary>
    /// <exception cref="CheckpointCorruptException">The version is missing or does not verify.</exception>
    public async Task MarkGoodAsync(long version, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, CheckpointVersion.First);
        await EnterAsync(cancellationToken);
        try
        {
            var current = Reader.ReadPointers().Good;
            if (current == version) return;
            if (current > version)
                throw new ArgumentException($"'good' is {CheckpointVersion.DirectoryName(current.Value)} and only moves forward; refusing to mark the older {CheckpointVersion.DirectoryName(version)}", nameof(version));
            var verdict = await Reader.VerifyAsync(version, CheckpointVerificationLevel.Full, cancellationToken);
            if (!verdict.IsValid) throw new CheckpointCorruptException(Root, version, verdict.Problems);
            await _io.ExecuteAsync(_ =>
            {
                PointerFile.WriteAtomic(Root, CheckpointLayout.GoodPointer, version);
                return ValueTask.CompletedTask;
            }, CancellationToken.None);
            _logger.LogInformation("Marked checkpoint {Version} good in {Root} (was {Previous})", CheckpointVersion.DirectoryName(version), Root, Describe(current));
            AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.MarkGood, From = current, To = version });
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Points <c>latest</c> at an existing, fully verified version: <paramref name="toVersion"/>, or
    /// <c>good</c> when null. Deletes nothing; newer versions stay for inspection until retention.
    /// The next write gets max(existing) + 1 with parent = the target. Records a rollback event with
    /// <paramref name="reason"/>. Afterwards the caller must <see cref="LoadLatestValidAsync"/> before
    /// writing again (its in-memory state is the rolled-back-away one).
    /// Any valid version may be named, also one newer than <c>latest</c> (to undo a rollback).
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
                outcome = await RollbackCoreAsync(request.To, $"{request.Reason} (requested by {request.User ?? "?"}@{request.Host ?? "?"} at {request.Time:yyyy-MM-ddTHH:mm:ssZ})", ct);
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
        }
        await _io.ExecuteAsync(_ =>
        {
            RollbackRequestFile.Delete(Root);
            return ValueTask.CompletedTask;
        }, CancellationToken.None);
        return outcome is { Changed: true } ? outcome : null;
    }

    private async Task<CheckpointRollback> RollbackCoreAsync(long? toVersion, string reason, CancellationToken ct)
    {
        var pointers = Reader.ReadPointers();
        var target = toVersion ?? pointers.Good
            ?? throw new InvalidOperationException($"no 'good' version is recorded in {Root}; name the version to roll back to");
        var verdict = await Reader.VerifyAsync(target, CheckpointVerificationLevel.Full, ct);
        if (!verdict.IsValid) throw new CheckpointCorruptException(Root, target, verdict.Problems);
        var now = _time.GetUtcNow();
        if (pointers.Latest == target)
            return new CheckpointRollback(target, target, reason, now, Changed: false, NextVersion());

        await _io.ExecuteAsync(_ =>
        {
            PointerFile.WriteAtomic(Root, CheckpointLayout.LatestPointer, target);
            return ValueTask.CompletedTask;
        }, CancellationToken.None);
        _lineage = Lineage.RolledBack;
        _base = null;
        _logger.LogWarning("Rolled back checkpoint store {Root}: latest {From} -> {To} ({Reason})", Root, Describe(pointers.Latest), CheckpointVersion.DirectoryName(target), reason);
        AppendEventBestEffort(new CheckpointEvent { Time = now, Kind = CheckpointEventKind.Rollback, From = pointers.Latest, To = target, Reason = reason });
        return new CheckpointRollback(pointers.Latest, target, reason, now, Changed: true, NextVersion());
    }

    /// <summary>
    /// Deletes versions beyond the newest <see cref="CheckpointOptions.KeepLast"/>, never the ones
    /// <c>latest</c> or <c>good</c> name, nor the parent of the next write. Runs after every write; call it
    /// yourself only after lowering KeepLast. Each version is renamed to <c>.deleting-…</c> first, so it
    /// disappears atomically even if the deletion itself is interrupted. Returns the deleted versions.
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
            foreach (var artefact in draft.Artefacts)
            {
                ct.ThrowIfCancellationRequested();
                var path = Path.Combine(temp, artefact.Name);
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
        var pointers = Reader.ReadPointers();
        var keep = versions.TakeLast(_options.KeepLast).ToHashSet();
        if (pointers.Latest is { } latest) keep.Add(latest);
        if (pointers.Good is { } good) keep.Add(good);
        if (_base is { } parentOfNext) keep.Add(parentOfNext);
        var deleted = new List<long>();
        foreach (var version in versions.Where(v => !keep.Contains(v)))
        {
            ct.ThrowIfCancellationRequested();
            var name = CheckpointVersion.DirectoryName(version);
            await _io.ExecuteAsync(_ =>
            {
                var doomed = Path.Combine(Root, $"{CheckpointLayout.DeletingDirectoryPrefix}{name}-{Guid.NewGuid():N}");
                Directory.Move(Path.Combine(Root, name), doomed);
                PosixFileSystem.Fsync(Root, isDirectory: true);
                Directory.Delete(doomed, recursive: true);
                return ValueTask.CompletedTask;
            }, ct);
            deleted.Add(version);
            _logger.LogInformation("Retention deleted checkpoint {Version} from {Root} (keeping the last {KeepLast} and the pointed-to versions)", name, Root, _options.KeepLast);
            AppendEventBestEffort(new CheckpointEvent { Time = _time.GetUtcNow(), Kind = CheckpointEventKind.Delete, Version = version, Reason = $"retention: keep last {_options.KeepLast}" });
        }
        return deleted;
    }

    private void RemoveLeftovers()
    {
        foreach (var name in Reader.FindLeftovers())
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
