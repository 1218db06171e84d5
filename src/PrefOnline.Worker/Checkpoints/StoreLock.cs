using System.Globalization;
using System.Text;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The single-writer lock: an exclusive flock on <c>root/.lock</c>, held for the writer's lifetime and
/// released by the kernel when the process dies (so a crash never leaves a stale lock). The file's
/// text names the holder, only so the refusal message can say who holds it.
/// flock is per open file description: a second <see cref="CheckpointStore"/> in the same process is
/// refused exactly like a second process. It is not reliable on NFS; use a local or block volume (the
/// Helm chart's PVC) for the checkpoint root.
/// </summary>
internal sealed class StoreLock : IDisposable
{
    private const int MaxHolderNoteBytes = 4096;
    private int _fd;

    private StoreLock(int fd) => _fd = fd;

    public static StoreLock Acquire(string root, TimeProvider time)
    {
        var path = Path.Combine(root, CheckpointLayout.LockFileName);
        var fd = PosixFileSystem.OpenLockFile(path);
        try
        {
            if (!PosixFileSystem.TryLockExclusive(fd, path))
            {
                var holder = Encoding.UTF8.GetString(PosixFileSystem.ReadPrefix(fd, MaxHolderNoteBytes)).Trim();
                throw new CheckpointLockedException(root, holder.Length == 0 ? null : holder);
            }
            var note = string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId} on host {Environment.MachineName} since {time.GetUtcNow():yyyy-MM-ddTHH:mm:ssZ}\n");
            PosixFileSystem.Overwrite(fd, Encoding.UTF8.GetBytes(note), path);
            var acquired = new StoreLock(fd);
            fd = -1;
            return acquired;
        }
        finally
        {
            if (fd >= 0) PosixFileSystem.Close(fd);
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) PosixFileSystem.Close(fd); // closing the descriptor releases the flock
    }
}
