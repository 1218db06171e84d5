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
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Root = directory;
        _io = ioPipeline ?? CheckpointRetry.CreatePipeline(new CheckpointOptions(), logger);
        _logger = logger ?? NullLogger.Instance;
    }

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
        return _io.ExecuteAsync(token => new ValueTask<CheckpointVerification>(CheckpointVerifier.VerifyAsync(Root, version, level, token)), cancellationToken).AsTask();
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
    /// valid version on its lineage. The walk goes latest → its parent → ..., taking the parent from
    /// the manifest, or (when the manifest is unreadable) from the commit line in events.jsonl, or else
    /// the next lower version on disk. Following parents rather than numbers matters after a rollback:
    /// the versions that were rolled back away are newer than the ones <c>latest</c> descends from, and
    /// a fallback must not bring them back. Without a <c>latest</c> pointer (a crash before the first
    /// commit, or a deleted pointer) the walk starts at the highest version on disk.
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
        long? candidate = pointers.Latest;
        if (candidate is null && onDisk.Count > 0)
        {
            candidate = onDisk[^1];
            warnings.Add($"no readable 'latest' pointer; starting from the highest version on disk, {CheckpointVersion.DirectoryName(onDisk[^1])}");
        }

        Dictionary<long, long?>? parentsFromEvents = null;
        while (candidate is { } version)
        {
            var verdict = await VerifyAsync(version, CheckpointVerificationLevel.Full, cancellationToken);
            if (verdict.IsValid)
            {
                foreach (var skip in skipped)
                    _logger.LogWarning("Refused checkpoint {Version} in {Root}: {Reason}", CheckpointVersion.DirectoryName(skip.Version), Root, skip.Reason);
                if (skipped.Count > 0)
                    _logger.LogWarning("Fell back to checkpoint {Version} in {Root} after refusing {Skipped} newer version(s)", CheckpointVersion.DirectoryName(version), Root, skipped.Count);
                return new CheckpointLoadResult(new Checkpoint(Root, verdict.Manifest!), skipped, warnings);
            }
            skipped.Add(new SkippedCheckpoint(version, verdict.Reason));
            candidate = PredecessorOf(version, verdict, onDisk, ref parentsFromEvents);
        }
        foreach (var skip in skipped)
            _logger.LogWarning("Refused checkpoint {Version} in {Root}: {Reason}", CheckpointVersion.DirectoryName(skip.Version), Root, skip.Reason);
        return new CheckpointLoadResult(null, skipped, warnings);
    }

    /// <summary>The version to try after <paramref name="version"/> failed; always strictly older, so the walk ends.</summary>
    private long? PredecessorOf(long version, CheckpointVerification verdict, IReadOnlyList<long> onDisk, ref Dictionary<long, long?>? parentsFromEvents)
    {
        // A parsed manifest knows its parent, even if its files are damaged. Null parent = start of a lineage: stop.
        if (verdict.Manifest is { } manifest && manifest.Version == version && (manifest.Parent is null || manifest.Parent < version))
            return manifest.Parent;

        parentsFromEvents ??= CheckpointEventLog.Read(Root).Events
            .Where(e => e is { Kind: CheckpointEventKind.Commit, Version: not null })
            .GroupBy(e => e.Version!.Value)
            .ToDictionary(g => g.Key, g => g.Last().Parent);
        if (parentsFromEvents.TryGetValue(version, out var parent) && (parent is null || parent < version))
            return parent;

        for (var i = onDisk.Count - 1; i >= 0; i--)
            if (onDisk[i] < version) return onDisk[i];
        return null;
    }
}
