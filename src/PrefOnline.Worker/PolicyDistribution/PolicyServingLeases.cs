namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Versions whose policy files the learner served over <c>/policy/{version}/…</c> recently. A generator fetches
/// a version's files one request after another; retention must not delete the version in between (each file
/// is opened before its response starts, so a deletion during one download is harmless, but the next request
/// would find nothing). Every request renews its version's lease for <see cref="Duration"/>; the checkpoint
/// store keeps leased versions (registered with <c>CheckpointStore.ProtectFromRetention</c>). Thread-safe.
/// </summary>
public sealed class PolicyServingLeases(TimeProvider time)
{
    /// <summary>How long a version stays protected after its last request: far longer than the gap between a generator's file requests.</summary>
    public static readonly TimeSpan Duration = TimeSpan.FromMinutes(10);

    private readonly Lock gate = new();
    private readonly Dictionary<long, DateTimeOffset> until = [];

    /// <summary>A file of <paramref name="version"/> is being served.</summary>
    public void Renew(long version)
    {
        lock (gate) until[version] = time.GetUtcNow() + Duration;
    }

    /// <summary>Versions served within the last <see cref="Duration"/>.</summary>
    public IReadOnlyCollection<long> Active()
    {
        var now = time.GetUtcNow();
        lock (gate)
        {
            foreach (var expired in until.Where(u => u.Value <= now).Select(u => u.Key).ToList()) until.Remove(expired);
            return until.Keys.ToList();
        }
    }
}
