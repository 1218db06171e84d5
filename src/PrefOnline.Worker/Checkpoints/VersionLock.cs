namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Readers and retention agree through an flock on a version's <c>manifest.json</c>: a reader (verify, list,
/// load — in this process or another, e.g. <c>prefonline checkpoint verify</c> run beside the learner) holds a
/// shared lock while it reads the version; retention takes the exclusive lock without waiting before it
/// deletes one, and keeps the version when a reader holds it. The kernel drops a dead reader's lock, so a
/// crashed <c>verify</c> never pins a version for good. Retention holds its exclusive lock until the version
/// is gone, so a reader that opened the manifest just before cannot get its shared lock and reports the
/// version as being deleted instead of reading half a directory.
/// </summary>
internal sealed class VersionLock : IDisposable
{
    private int fd;

    private VersionLock(int fd) => this.fd = fd;

    /// <summary>What <see cref="TryAcquire"/> found.</summary>
    public enum Outcome
    {
        /// <summary>The lock is held (dispose to release).</summary>
        Held,

        /// <summary>No manifest to lock: the version is missing or damaged; nothing is held.</summary>
        NoManifest,

        /// <summary>Another open file holds a conflicting lock (a reader for retention; retention for a reader).</summary>
        Busy,
    }

    /// <summary>Shared (a reader) or exclusive (retention, about to delete) lock on <paramref name="version"/>'s manifest.</summary>
    public static (Outcome Outcome, VersionLock? Lock) TryAcquire(string root, long version, bool exclusive)
    {
        var path = Path.Combine(CheckpointLayout.VersionPath(root, version), CheckpointLayout.ManifestFileName);
        var handle = PosixFileSystem.OpenExisting(path);
        if (handle < 0) return (Outcome.NoManifest, null);
        try
        {
            var locked = exclusive ? PosixFileSystem.TryLockExclusive(handle, path) : PosixFileSystem.TryLockShared(handle, path);
            if (!locked) return (Outcome.Busy, null);
            var held = new VersionLock(handle);
            handle = -1;
            return (Outcome.Held, held);
        }
        finally
        {
            if (handle >= 0) PosixFileSystem.Close(handle);
        }
    }

    public void Dispose()
    {
        var handle = Interlocked.Exchange(ref fd, -1);
        if (handle >= 0) PosixFileSystem.Close(handle);
    }
}
