namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// A thread-safe view of the pipeline's progress for the console, the demo report and tests (metrics go
/// to /metrics; this is the in-process read side). Updated by the pipeline's stages.
/// </summary>
public sealed class PipelineStatus
{
    private readonly Lock gate = new();
    private readonly List<UpdatePoint> updates = [];
    private readonly List<(double At, long From, long To, string Reason)> rollbacks = [];
    private long policyVersion;
    private long checkpoints;
    private long labelsAbsorbed;
    private long rolloutsScored;
    private long lastCheckpoint;

    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    public long PolicyVersion => Interlocked.Read(ref policyVersion);

    public long Checkpoints => Interlocked.Read(ref checkpoints);

    /// <summary>The version of the last checkpoint written or loaded.</summary>
    public long LastCheckpoint => Interlocked.Read(ref lastCheckpoint);

    public long LabelsAbsorbed => Interlocked.Read(ref labelsAbsorbed);

    public long RolloutsScored => Interlocked.Read(ref rolloutsScored);

    /// <summary>True once a policy is loaded and the pipeline runs.</summary>
    public bool Running { get; private set; }

    public void SetRunning(bool running)
    {
        if (running && runningSince is null) runningSince = DateTimeOffset.UtcNow;
        Running = running;
    }

    private DateTimeOffset? runningSince;

    /// <summary>When the pipeline first ran (after the initial policy was built or loaded).</summary>
    public DateTimeOffset? RunningSince => runningSince;

    /// <summary>Seconds since the pipeline first ran (0 before).</summary>
    public double RunningSeconds => runningSince is { } since ? (DateTimeOffset.UtcNow - since).TotalSeconds : 0;

    public void SetPolicyVersion(long version) => Interlocked.Exchange(ref policyVersion, version);

    public void CheckpointWritten(long version)
    {
        Interlocked.Increment(ref checkpoints);
        Interlocked.Exchange(ref lastCheckpoint, version);
    }

    public void CheckpointLoaded(long version) => Interlocked.Exchange(ref lastCheckpoint, version);

    public void AddLabels(long count) => Interlocked.Add(ref labelsAbsorbed, count);

    public void AddScored(long count) => Interlocked.Add(ref rolloutsScored, count);

    public void UpdateAccepted(UpdatePoint point)
    {
        lock (gate) updates.Add(point);
        SetPolicyVersion(point.PolicyVersion);
    }

    public void RolledBack(long from, long to, string reason)
    {
        lock (gate) rollbacks.Add((RunningSeconds, from, to, reason));
        SetPolicyVersion(to);
    }

    public IReadOnlyList<UpdatePoint> Updates
    {
        get
        {
            lock (gate) return updates.ToList();
        }
    }

    public IReadOnlyList<(double At, long From, long To, string Reason)> Rollbacks
    {
        get
        {
            lock (gate) return rollbacks.ToList();
        }
    }

    public double Elapsed => (DateTimeOffset.UtcNow - Started).TotalSeconds;
}
