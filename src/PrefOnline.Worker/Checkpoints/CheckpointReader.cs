using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Read-only access to a checkpoint store: listing, verification, loading. Takes no lock and never
/// changes anything on disk, so any number of readers (generators, the CLI's list and verify) can run
/// beside the one writer. A reader ignores everything the writer uses privately (temp directories,
/// half-replaced pointers), so a write in progress or a crashed one is invisible to it.
/// I/O goes through the retry pipeline; corruption is reported, never retried.
/// </summary>
public sealed class CheckpointReader
{
    private readonly ResiliencePipeline _io;
    private readonly ILogger _logger;

    /// <param name="directory">The store's root (the directory holding <c>latest</c> and the <c>vNNNNNN/</c> directories).</param>
    /// <param name="ioPipeline">Retry around file I/O; <see cref="CheckpointRetry.CreatePipeline"/> by default.</param>
    /// <param name="logger">Where skipped versions are logged.</param>
    public CheckpointReader(string directory, ResiliencePipeline? ioPipeline = null, ILogger? logger = null)
        : this(directory, ioPipeline, logger, knownGood: null)
    {
    }

    /// <param name="knownGood">The writer's blobs it has hashed already (see <see cref="CheckpointBlobs"/>): not hashed again.</param>
    internal CheckpointReader(string directory, ResiliencePipeline? ioPipeline, ILogger? logger, KnownGoodBlobs? knownGood)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Root = directory;
        _io = ioPipeline ?? CheckpointRetry.CreatePipeline(new CheckpointOptions(), logger);
        _logger = logger ?? NullLogger.Instance;
        _knownGood = knownGood;
    }

    private readonly KnownGoodBlobs? _knownGood;

    public string Root { get; }

    /// <summary>Versions present on disk (canonical <c>vNNNNNN</c> directories), ascending, valid or not.</summary>
    public IReadOnlyList<long> ListVersions()
    {
        if (!Directory.Exists(Root)) return [];
        var versions = new List<long>();
        foreach (var path in Directory.EnumerateDirectories(Root))
            if (CheckpointVersion.TryParseDirectoryName(Path.GetFileName(path), out var version)) versions.Add(version);
        versions.Sort();
        return versions;
    }

    public CheckpointPointers ReadPointers()
    {
        var (latest, latestProblem) = PointerFile.Read(Root, CheckpointLayout.LatestPointer);
        var (good, goodProblem) = PointerFile.Read(Root, CheckpointLayout.GoodPointer);
        return new CheckpointPointers(latest, good, new[] { latestProblem, goodProblem }.OfType<string>().ToList());
    }

    /// <summary>Writes in progress or left behind by a crash (the next writer removes the latter).</summary>
    public IReadOnlyList<string> FindLeftovers()
    {
        if (!Directory.Exists(Root)) return [];
        return Directory.EnumerateFileSystemEntries(Root)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(IsLeftover)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    internal static bool IsLeftover(string name) =>
        name.StartsWith(CheckpointLayout.TempDirectoryPrefix, StringComparison.Ordinal)
        || name.StartsWith(CheckpointLayout.DeletingDirectoryPrefix, StringComparison.Ordinal)
        || name.StartsWith(CheckpointLayout.RollbackRequestTempPrefix, StringComparison.Ordinal)
        || name == CheckpointLayout.PointerTempName(CheckpointLayout.LatestPointer)
        || name == CheckpointLayout.PointerTempName(CheckpointLayout.GoodPointer);

    /// <summary>An operator's rollback waiting for the learner, or null; a damaged request file gives its problem instead.</summary>
    public (CheckpointRollbackRequest? Request, string? Problem) ReadRollbackRequest() => RollbackRequestFile.Read(Root);

    /// <summary>The audit log, oldest first; torn or foreign lines are skipped.</summary>
    public IReadOnlyList<CheckpointEvent> ReadEvents() => CheckpointEventLog.Read(Root).Events;

    /// <summary>Verifies one version. Never throws for corruption (see the verdict); throws on I/O faults that outlast the retries.</summary>
    public Task<CheckpointVerification> VerifyAsync(long version, CheckpointVerificationLevel level = CheckpointVerificationLevel.Full, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, CheckpointVersion.First);
        return VerifyCoreAsync(version, level, cancellationToken);
    }

    private async Task<CheckpointVerification> VerifyCoreAsync(long version, CheckpointVerificationLevel level, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(CheckpointIoOperations.Read, cancellationToken);
        try
        {
            return await _io.ExecuteAsync(static (context, state) => new ValueTask<CheckpointVerification>(CheckpointVerifier.VerifyAsync(state.Root, state.version, state.level, context.CancellationToken, state._knownGood)),
                context, (Root, version, level, _knownGood));
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>Every version on disk, newest first, with its verdict and pointer marks.</summary>
    public async Task<IReadOnlyList<CheckpointSummary>> ListAsync(CheckpointVerificationLevel level = CheckpointVerificationLevel.Full, CancellationToken cancellationToken = default)
    {
        var pointers = ReadPointers();
        var rows = new List<CheckpointSummary>();
        foreach (var version in ListVersions().Reverse())
        {
            var verdict = await VerifyAsync(version, level, cancellationToken);
            rows.Add(new CheckpointSummary(verdict, pointers.Latest == version, pointers.Good == version));
        }
        return rows;
    }

    /// <summary>Loads one version after full verification; <see cref="CheckpointCorruptException"/> if it is not valid.</summary>
    public async Task<Checkpoint> LoadAsync(long version, CancellationToken cancellationToken = default)
    {
        var verdict = await VerifyAsync(version, CheckpointVerificationLevel.Full, cancellationToken);
        if (!verdict.IsValid) throw new CheckpointCorruptException(Root, version, verdict.Problems);
        return new Checkpoint(Root, verdict.Manifest!);
    }

    /// <summary>
    /// Loads what a restarting worker should resume from: <c>latest</c> if it verifies, else the newest
    /// valid version on its lineage; a publish-only version (<see cref="CheckpointManifest.PublishOnly"/>) is passed over
    /// for the newest full version on its line, without counting as skipped. The walk goes latest → its parent → ..., taking the parent from
    /// the manifest, or (when the manifest is unreadable) from the commit line in events.jsonl. Following
    /// parents rather than numbers matters after a rollback: the versions that were rolled back away are
    /// newer than the ones <c>latest</c> descends from, and a fallback must not bring them back. When the
    /// walk reaches a version whose parent nothing records (its directory and its log line are gone), it
    /// continues on <c>good</c>'s line (<c>good</c> and its ancestors) below that version; only a store
    /// without a <c>good</c> pointer falls back to the next lower version on disk, and never to one a
    /// rollback abandoned. Without a <c>latest</c> pointer (a crash before the first commit, or a deleted
    /// pointer) the walk starts at the highest version on disk that no rollback abandoned.
    /// Every refused version is in <see cref="CheckpointLoadResult.Skipped"/> with its reason.
    /// </summary>
    public async Task<CheckpointLoadResult> LoadLatestValidAsync(CancellationToken cancellationToken = default)
    {
        var warnings = new List<string>();
        var skipped = new List<SkippedCheckpoint>();
        if (!Directory.Exists(Root))
        {
            warnings.Add($"checkpoint directory {Root} does not exist");
            return new CheckpointLoadResult(null, skipped, warnings);
        }

        var onDisk = ListVersions();
        var pointers = ReadPointers();
        warnings.AddRange(pointers.Problems);
        var lineage = new CheckpointLineage(Root);
        var abandoned = onDisk.Count == 0 ? new HashSet<long>() : await lineage.AbandonedAsync(pointers.Latest, cancellationToken);
        long? candidate = pointers.Latest;
        if (candidate is null && onDisk.Count > 0)
        {
            candidate = onDisk.LastOrDefault(v => !abandoned.Contains(v));
            if (candidate == 0) candidate = onDisk[^1];
            warnings.Add($"no readable 'latest' pointer; starting from the highest version on disk that no rollback abandoned, {CheckpointVersion.DirectoryName(candidate.Value)}");
        }

        IReadOnlyList<long>? goodLine = null;
        while (candidate is { } version)
        {
            var verdict = await VerifyAsync(version, CheckpointVerificationLevel.Full, cancellationToken);
            if (verdict is { IsValid: true, Manifest: { PublishOnly: true } publishOnly })
            {
                // A policy published between two checkpoints holds no state: resume from the checkpoint it followed (its
                // parent chain leads there). The updates since that checkpoint are redone from the re-read labels.
                candidate = publishOnly.Parent;
                continue;
            }
            if (verdict.IsValid)
            {
                foreach (var skip in skipped)
                    _logger.LogWarning("Refused checkpoint {Version} in {Root}: {Reason}", CheckpointVersion.DirectoryName(skip.Version), Root, skip.Reason);
                if (skipped.Count > 0)
                    _logger.LogWarning("Fell back to checkpoint {Version} in {Root} after refusing {Skipped} newer version(s)", CheckpointVersion.DirectoryName(version), Root, skipped.Count);
                return new CheckpointLoadResult(new Checkpoint(Root, verdict.Manifest!), skipped, warnings);
            }
            skipped.Add(new SkippedCheckpoint(version, verdict.Reason));

            // A parsed manifest knows its parent, even if its files are damaged; else the commit event does.
            var (known, parent) = verdict.Manifest is { } manifest && manifest.Version == version && (manifest.Parent is null || manifest.Parent < version)
                ? (true, manifest.Parent)
                : await lineage.ParentOfAsync(version, cancellationToken);
            if (known)
            {
                candidate = parent; // null: the start of the lineage, nothing older belongs to it
                continue;
            }

            // Nothing records where this version came from: continue on good's line, the versions known to
            // have passed the guardrail and their ancestors; never a lower number picked blindly, which after
            // a rollback would be an abandoned version.
            if (pointers.Good is { } good && (goodLine ??= (await lineage.LineOfAsync(good, cancellationToken)).Line).FirstOrDefault(v => v < version && !abandoned.Contains(v)) is > 0 and var onGoodsLine)
            {
                candidate = onGoodsLine;
                warnings.Add($"the parent of {CheckpointVersion.DirectoryName(version)} is unknown (no manifest, no commit event); falling back on good's line ({CheckpointVersion.DirectoryName(good)} and its ancestors)");
            }
            else
            {
                // No lineage is left to follow: the next lower number is all there is. Said loudly, because after a
                // rollback it may be a version the rollback abandoned (the log that would tell is gone too).
                candidate = onDisk.LastOrDefault(v => v < version && !abandoned.Contains(v));
                if (candidate == 0) candidate = null;
                else warnings.Add($"the parent of {CheckpointVersion.DirectoryName(version)} is unknown and good's line offers nothing older; falling back to the next lower version on disk, {CheckpointVersion.DirectoryName(candidate!.Value)}, which may be one a rollback abandoned: check `prefonline checkpoint list`");
            }
        }
        foreach (var skip in skipped)
            _logger.LogWarning("Refused checkpoint {Version} in {Root}: {Reason}", CheckpointVersion.DirectoryName(skip.Version), Root, skip.Reason);
        return new CheckpointLoadResult(null, skipped, warnings);
    }

    /// <summary>
    /// Versions a rollback left behind (on the line of a rollback's <c>from</c>, not on its target's nor
    /// on <c>latest</c>'s line), recognised from the parent chains and the rollback events.
    /// </summary>
    public Task<IReadOnlySet<long>> AbandonedVersionsAsync(CancellationToken cancellationToken = default) =>
        new CheckpointLineage(Root).AbandonedAsync(ReadPointers().Latest, cancellationToken);

    /// <summary>
    /// The last rollback (its <c>from</c>, <c>to</c> and reason in a <see cref="CheckpointEvent"/>) when
    /// <c>latest</c> still names its target and nothing was committed since: a learner starting now resumes
    /// from the target for the first time. Null otherwise.
    /// </summary>
    public CheckpointEvent? RollbackNotYetResumed() => new CheckpointLineage(Root).RollbackNotYetResumed(ReadPointers().Latest);
}
