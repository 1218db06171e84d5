namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// The rule for the <c>good</c> checkpoint pointer. A version is <i>proposed</i> once it (1) has a durable
/// checkpoint, (2) passed its own guardrail evaluation, and (3) was followed by <c>confirmations</c>
/// further passing evaluations. Any failing evaluation discards every version still awaiting
/// confirmation: a drift detector flags a shift some observations after it started, so the versions
/// written just before a trip are suspect. For the same reason a caller may name the version from which
/// a change is suspected (CUSUM's running estimate of the change point), or hold every promotion while a
/// detector is halfway to an alarm: versions from there on wait, confirmed or not, until the suspicion
/// clears or turns into a trip.
/// <para>A proposal is not yet <c>good</c>: <see cref="GoodVersion"/> names what the store's <c>good</c>
/// pointer names, and moves only when the caller reports the pointer written (<see cref="Marked"/>) or a
/// rollback (<see cref="RolledBackTo"/>). A proposal whose write failed stays a candidate and is proposed
/// again at the next evaluation, so the rollback target never names a version the store does not.</para>
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

    /// <summary>The version the store's <c>good</c> pointer names (null until one is marked or given).</summary>
    public long? GoodVersion { get; private set; }

    /// <summary>Versions checkpointed and passing, awaiting confirmation or a pointer write, oldest first.</summary>
    public IReadOnlyList<long> PendingVersions => candidates.Select(c => c.Version).ToList();

    /// <summary>
    /// Record the guardrail's verdict on <paramref name="version"/>. Returns the version <c>good</c>
    /// should now be moved to (write the pointer, then call <see cref="Marked"/>), else null.
    /// </summary>
    /// <param name="version">The evaluated version.</param>
    /// <param name="passed">Whether every check passed.</param>
    /// <param name="suspectFrom">Versions at or after this one are not proposed now (a change may have started there).</param>
    /// <param name="hold">True while a detector is building evidence of a change: confirmations count, nothing is proposed.</param>
    public long? OnEvaluation(long version, bool passed, long? suspectFrom = null, bool hold = false)
    {
        if (!passed)
        {
            candidates.Clear();
            lastPassedVersion = null;
            return null;
        }
        lastPassedVersion = version;
        long? proposed = null;
        for (var i = 0; i < candidates.Count; i++)
        {
            var (candidate, confirmed) = candidates[i];
            if (candidate >= version) continue; // an evaluation confirms only versions before it
            confirmed = Math.Min(confirmed + 1, confirmations);
            candidates[i] = (candidate, confirmed);
            if (confirmed >= confirmations && (suspectFrom is null || candidate < suspectFrom))
                proposed = Math.Max(proposed ?? long.MinValue, candidate);
        }
        return hold ? null : Propose(proposed);
    }

    /// <summary>
    /// A durable checkpoint of <paramref name="version"/> exists. It becomes a candidate if its own
    /// evaluation passed. Returns a proposal for <c>good</c> (only with zero confirmations).
    /// </summary>
    public long? CheckpointWritten(long version)
    {
        if (lastPassedVersion != version) return null;
        if (candidates.Any(c => c.Version == version)) return null;
        candidates.Add((version, 0));
        return confirmations == 0 ? Propose(version) : null;
    }

    /// <summary>The store's <c>good</c> pointer now names <paramref name="version"/> (a proposal was written).</summary>
    public void Marked(long version)
    {
        if (GoodVersion is { } current && current >= version) return;
        GoodVersion = version;
        candidates.RemoveAll(c => c.Version <= version);
    }

    /// <summary>After a rollback; <c>good</c> is now <paramref name="goodVersion"/> (the pointer may have moved back; null: none): nothing newer is a candidate any more.</summary>
    public void RolledBackTo(long? goodVersion)
    {
        candidates.Clear();
        lastPassedVersion = null;
        GoodVersion = goodVersion;
    }

    private long? Propose(long? version) =>
        version is { } v && (GoodVersion is not { } current || v > current) ? v : null;
}
