namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Another writer (a running learner, or a CLI rollback) holds the store's lock. Not an I/O fault:
/// it is never retried. Stop the other writer, or point this one at a different directory.
/// </summary>
public sealed class CheckpointLockedException(string root, string? holder)
    : InvalidOperationException($"checkpoint store {root} is in use by another writer ({holder ?? "holder unknown"}); only one learner may write a store")
{
    public string Root { get; } = root;

    /// <summary>The holder's note ("pid 123 on host h since ..."), when it could be read.</summary>
    public string? Holder { get; } = holder;
}
