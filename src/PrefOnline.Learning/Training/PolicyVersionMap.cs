namespace PrefOnline.Learning.Training;

/// <summary>
/// Published policy version → the learner's update count (<see cref="Learner.UpdateCount"/>) of the weights it
/// names. Rollout records and policy events carry published versions (a checkpoint's version: unique,
/// monotonic, with gaps); replay measures staleness in updates, so a record's version is translated here
/// before it enters replay. Bounded: the oldest entries go first. Not thread-safe (the learner's thread owns it).
/// </summary>
public sealed class PolicyVersionMap
{
    /// <summary>Entries kept; a record naming an older version gets the oldest kept one's count (or 0).</summary>
    public const int MaxEntries = 4096;

    private readonly SortedDictionary<long, long> map = [];

    /// <param name="stored">Entries a checkpoint held.</param>
    /// <param name="currentVersion">The published version of the weights now loaded (added unless a stored
    /// entry already names it).</param>
    /// <param name="currentUpdateCount">Their update count.</param>
    public PolicyVersionMap(IEnumerable<KeyValuePair<long, long>> stored, long currentVersion, long currentUpdateCount)
    {
        ArgumentNullException.ThrowIfNull(stored);
        foreach (var (published, updates) in stored) map[published] = updates;
        map.TryAdd(currentVersion, currentUpdateCount);
    }

    /// <summary>The entries, by published version (what a checkpoint stores).</summary>
    public IReadOnlyDictionary<long, long> Entries => map;

    /// <summary>The update count of <paramref name="publishedVersion"/>: exact when known, otherwise that of
    /// the newest known version below it (a generator may name a version this learner never published, e.g.
    /// after a restore), 0 when none is.</summary>
    public long UpdateCountOf(long publishedVersion)
    {
        if (map.TryGetValue(publishedVersion, out var exact)) return exact;
        long? floor = null;
        foreach (var (published, updates) in map)
        {
            if (published > publishedVersion) break;
            floor = updates;
        }
        return floor ?? 0;
    }

    /// <summary>Records a newly published version.</summary>
    public void Publish(long publishedVersion, long updateCount)
    {
        map[publishedVersion] = updateCount;
        while (map.Count > MaxEntries) map.Remove(map.Keys.First());
    }

    /// <summary>Renames the weights of a never-checkpointed state (version 0) to their first published version.</summary>
    public void AdoptFirst(long publishedVersion, long updateCount)
    {
        map.Remove(0);
        map[publishedVersion] = updateCount;
    }
}
