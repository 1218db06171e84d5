namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// The rule for the <c>good</c> checkpoint pointer: it only advances to a version that (1) has a
/// durable checkpoint, (2) passed its own guardrail evaluation, and (3) was followed by
/// <c>confirmations</c> further passing evaluations. Any failing evaluation discards every version
/// still awaiting confirmation: a drift detector flags a shift some observations after it started, so
/// the versions written just before a trip are suspect. For the same reason a caller may name the
/// version from which a change is suspected (CUSUM's running estimate of the change point): versions
/// from there on wait, confirmed or not, until the suspicion clears or turns into a trip.
/// Not thread-safe (the <see cref="Guardrail"/> serialises access).
/// </summary>
public sealed class GoodCheckpointTracker
{
    private readonly int confirmations;
    private readonly List<(long Version, int Confirmed)> candidates = [];
    private long? lastPassedVersion;

    public GoodCheckpointTracker(int confirmations, long? initialGood = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(confirmations);
        this.confirmations = confirmations;
        GoodVersion = initialGood;
    }

    /// <summary>The current <c>good</c> version (null until one qualifies or one is given).</summary>
    public long? GoodVersion { get; private set; }

    /// <summary>Versions checkpointed and passing, awaiting confirmation, oldest first.</summary>
    public IReadOnlyList<long> PendingVersions => candidates.Select(c => c.Version).ToList();

    /// <summary>
    /// Record the guardrail's verdict on <paramref name="version"/>. Returns the version <c>good</c>
    /// should now point to when it advanced, else null.
    /// </summary>
    /// <param name="version">The evaluated version.</param>
    /// <param name="passed">Whether every check passed.</param>
    /// <param name="suspectFrom">Versions at or after this one are not promoted now (a change may have started there).</param>
    public long? OnEvaluation(long version, bool passed, long? suspectFrom = null)
    {
        if (!passed)
        {
            candidates.Clear();
            lastPassedVersion = null;
            return null;
        }
        lastPassedVersion = version;
        long? promoted = null;
        for (var i = 0; i < candidates.Count; i++)
        {
            var (candidate, confirmed) = candidates[i];
            if (candidate >= version) continue; // an evaluation confirms only versions before it
            candidates[i] = (candidate, confirmed + 1);
            if (confirmed + 1 >= confirmations && (suspectFrom is null || candidate < suspectFrom))
                promoted = Math.Max(promoted ?? long.MinValue, candidate);
        }
        return Promote(promoted);
    }

    /// <summary>
    /// A durable checkpoint of <paramref name="version"/> exists. It becomes a candidate if its own
    /// evaluation passed. Returns the new <c>good</c> version when it advanced (only with zero confirmations).
    /// </summary>
    public long? CheckpointWritten(long version)
    {
        if (lastPassedVersion != version) return null;
        if (candidates.Any(c => c.Version == version)) return null;
        candidates.Add((version, 0));
        return confirmations == 0 ? Promote(version) : null;
    }

    /// <summary>After a rollback to <paramref name="goodVersion"/>: nothing newer is a candidate any more.</summary>
    public void RolledBackTo(long goodVersion)
    {
        candidates.Clear();
        lastPassedVersion = null;
        GoodVersion = goodVersion;
    }

    private long? Promote(long? version)
    {
        if (version is not { } v) return null;
        candidates.RemoveAll(c => c.Version <= v);
        if (GoodVersion is { } current && current >= v) return null;
        GoodVersion = v;
        return v;
    }
}
