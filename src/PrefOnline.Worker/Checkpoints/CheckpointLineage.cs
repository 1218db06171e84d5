namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Who continued from whom in a store, as far as the disk can tell, for one decision (a load, a rollback, a
/// pointer move): each version's parent comes from its manifest when that matches its checksum, else from
/// the version's commit line in <c>events.jsonl</c>; when neither exists (the version and its log line are
/// gone) the parent is unknown and a walk stops there. Results are cached for the object's life, so build a
/// new one per decision.
/// <para><b>Lines and abandoned versions.</b> A version's line is the version and its ancestors. After a
/// rollback F → T, new versions continue from T (their parent chain reaches T), so the versions on F's line
/// that are not on T's line are <i>abandoned</i>: they are never loaded, never a fallback and never
/// <c>good</c> again. The rollback events name every F and T, which makes the abandoned versions
/// recognisable even when <c>latest</c> is gone.</para>
/// </summary>
internal sealed class CheckpointLineage(string root)
{
    private readonly Dictionary<long, (bool Known, long? Parent)> parents = [];
    private IReadOnlyList<CheckpointEvent>? events;
    private Dictionary<long, long?>? committedParents;

    private IReadOnlyList<CheckpointEvent> Events => events ??= CheckpointEventLog.Read(root).Events;

    /// <summary>The parent of <paramref name="version"/> (null: the first of a lineage); Known = false when nothing on disk says.</summary>
    public async Task<(bool Known, long? Parent)> ParentOfAsync(long version, CancellationToken ct)
    {
        if (parents.TryGetValue(version, out var cached)) return cached;
        var found = await FromManifestAsync(version, ct) ?? FromEvents(version);
        parents[version] = found;
        return found;
    }

    /// <summary>
    /// <paramref name="version"/> and its known ancestors, newest first, down to <paramref name="floor"/>
    /// (versions below it are not needed by the caller; ancestors always have lower numbers). Complete is
    /// false when the walk stopped at a version whose parent is unknown.
    /// </summary>
    public async Task<(IReadOnlyList<long> Line, bool Complete)> LineOfAsync(long version, CancellationToken ct, long floor = CheckpointVersion.First)
    {
        var line = new List<long>();
        long? current = version;
        while (current is { } v && v >= floor)
        {
            line.Add(v);
            var (known, parent) = await ParentOfAsync(v, ct);
            if (!known) return (line, false);
            if (parent is { } p && p >= v) return (line, false); // a damaged chain; never loop
            current = parent;
        }
        return (line, true);
    }

    /// <summary>True when <paramref name="ancestor"/> is <paramref name="version"/> or one of its known ancestors.</summary>
    public async Task<bool> IsOnLineOfAsync(long ancestor, long version, CancellationToken ct)
    {
        if (ancestor > version) return false;
        var (line, _) = await LineOfAsync(version, ct, floor: ancestor);
        return line.Contains(ancestor);
    }

    /// <summary>
    /// Versions left behind by rollbacks: on the line of a rollback's <c>from</c> but not on its target's line,
    /// nor on <paramref name="latest"/>'s line (a rollback can be undone by rolling forward again).
    /// </summary>
    public async Task<IReadOnlySet<long>> AbandonedAsync(long? latest, CancellationToken ct)
    {
        var abandoned = new HashSet<long>();
        foreach (var rollback in Events.Where(e => e is { Kind: CheckpointEventKind.Rollback, From: not null, To: not null }))
        {
            // Above the target only: usually the target is an ancestor of `from`, and the walks stay short.
            var to = rollback.To!.Value;
            var (left, _) = await LineOfAsync(rollback.From!.Value, ct, floor: to);
            foreach (var version in left)
                if (version != to) abandoned.Add(version);
        }
        if (latest is { } head && abandoned.Count > 0)
        {
            var (current, _) = await LineOfAsync(head, ct, floor: abandoned.Min());
            abandoned.ExceptWith(current);
        }
        return abandoned;
    }

    /// <summary>
    /// The last rollback, when nothing was committed after it and <c>latest</c> still names its target: the
    /// learner resumes from that target for the first time (it continues the input streams from where the
    /// abandoned line had read, see docs/OPERATIONS.md#what-a-rollback-does-to-the-input-streams).
    /// </summary>
    public CheckpointEvent? RollbackNotYetResumed(long? latest)
    {
        for (var i = Events.Count - 1; i >= 0; i--)
        {
            var entry = Events[i];
            if (entry.Kind == CheckpointEventKind.Commit) return null;
            if (entry.Kind == CheckpointEventKind.Rollback)
                return entry.To is { } to && to == latest && entry.From is not null ? entry : null;
        }
        return null;
    }

    private async Task<(bool Known, long? Parent)?> FromManifestAsync(long version, CancellationToken ct)
    {
        var directory = CheckpointLayout.VersionPath(root, version);
        if (!Directory.Exists(directory)) return null;
        try
        {
            var manifest = await CheckpointVerifier.ReadManifestAsync(directory, [], ct);
            if (manifest is null || manifest.Version != version) return null;
            if (manifest.Parent is { } parent && parent >= version) return null;
            return (true, manifest.Parent);
        }
        catch (IOException)
        {
            return null; // unreadable now: the events may still know
        }
    }

    private (bool Known, long? Parent) FromEvents(long version)
    {
        committedParents ??= Events
            .Where(e => e is { Kind: CheckpointEventKind.Commit, Version: not null })
            .GroupBy(e => e.Version!.Value)
            .ToDictionary(g => g.Key, g => g.Last().Parent);
        return committedParents.TryGetValue(version, out var parent) && (parent is null || parent < version) ? (true, parent) : (false, null);
    }
}
