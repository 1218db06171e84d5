namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// A checkpoint could not be committed after the retries ran out. Nothing partial is visible:
/// <c>latest</c> still names the previous version (<see cref="LatestVersion"/>), so the caller keeps its
/// offsets uncommitted and may try again later. The inner exception is the last failure.
/// </summary>
public sealed class CheckpointWriteException(string message, long version, long? latestVersion, int attempts, Exception inner)
    : IOException(message, inner)
{
    /// <summary>The version number the failed write would have had.</summary>
    public long Version { get; } = version;

    /// <summary>What <c>latest</c> still points to.</summary>
    public long? LatestVersion { get; } = latestVersion;

    public int Attempts { get; } = attempts;

    /// <summary>
    /// True when the device or quota is full (ENOSPC, EDQUOT) even after the store deleted what it could: the
    /// write succeeds again once space is freed; nothing else is wrong with the store.
    /// </summary>
    public bool OutOfSpace { get; init; }
}
