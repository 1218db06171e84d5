using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>What the /policy endpoint may do with a requested checkpoint version.</summary>
public enum ServedVersionState
{
    /// <summary><c>latest</c> or one of its ancestors: served.</summary>
    Current,

    /// <summary>On disk but not on <c>latest</c>'s line — abandoned by a rollback (or never committed): 410 Gone.</summary>
    Withdrawn,

    /// <summary>Not in the store (never written, or deleted by retention), or no <c>latest</c> yet: 404.</summary>
    Missing,
}

/// <summary>
/// Which checkpoint versions the learner serves: only those on the current lineage, <c>latest</c> and its ancestors
/// (docs/OPERATIONS.md, "What a rollback does"). After a rollback F → T the versions above T on F's line are abandoned:
/// a generator, or anyone holding an old event, must not fetch them any more. Versions found on the line are cached per
/// <c>latest</c> (a committed version's parent never changes, so only a move of <c>latest</c> can change that answer);
/// a refusal is worked out again at every request, so a manifest that was unreadable for a moment is not held against
/// its version. Thread-safe.
/// </summary>
public sealed class ServedLineage(string storeRoot)
{
    private const int MaxCached = 1024;
    private readonly Lock gate = new();
    private readonly HashSet<long> onLine = [];
    private long? cachedLatest;

    public string Root { get; } = Path.GetFullPath(storeRoot);

    public async Task<ServedVersionState> StateOfAsync(long version, CancellationToken cancellationToken)
    {
        if (version < CheckpointVersion.First || !Directory.Exists(CheckpointLayout.VersionPath(Root, version))) return ServedVersionState.Missing;
        var (latest, _) = PointerFile.Read(Root, CheckpointLayout.LatestPointer);
        if (latest is not { } head) return ServedVersionState.Missing;
        lock (gate)
        {
            if (cachedLatest != head || onLine.Count >= MaxCached)
            {
                onLine.Clear();
                cachedLatest = head;
            }
            if (onLine.Contains(version)) return ServedVersionState.Current;
        }
        var current = await new CheckpointLineage(Root).IsOnLineOfAsync(version, head, cancellationToken).ConfigureAwait(false);
        lock (gate)
        {
            if (current && cachedLatest == head) onLine.Add(version);
        }
        return current ? ServedVersionState.Current : ServedVersionState.Withdrawn;
    }
}
