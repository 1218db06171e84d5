using System.Runtime.InteropServices;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The few POSIX calls .NET does not expose: fsync of a directory (so a rename survives power loss)
/// and flock (so a second writer is refused). .NET cannot open a directory as a file handle, and its
/// own FileShare locking can be switched off by an environment variable, so both are called directly.
/// Linux only (the product runs on Debian); flag values are the Linux ones, identical on x64 and arm64.
/// </summary>
internal static class PosixFileSystem
{
    private const string LibC = "libc";

    private const int ReadOnly = 0x0;        // O_RDONLY
    private const int ReadWrite = 0x2;       // O_RDWR
    private const int Create = 0x40;         // O_CREAT
    private const int CloseOnExec = 0x80000; // O_CLOEXEC: a child process must not inherit the lock
    private const int LockShared = 1;        // LOCK_SH
    private const int LockExclusive = 2;     // LOCK_EX
    private const int LockNonBlocking = 4;   // LOCK_NB
    private const int ErrorWouldBlock = 11;  // EWOULDBLOCK == EAGAIN on Linux
    private const int ErrorInvalid = 22;     // EINVAL: a file system that cannot fsync directories
    private const int ErrorInterrupted = 4;  // EINTR
    private const int ErrorNoEntry = 2;      // ENOENT
    private const int ErrorNotDirectory = 20; // ENOTDIR
    private const int ErrorNoSpace = 28;     // ENOSPC
    private const int ErrorQuota = 122;      // EDQUOT
    private const int ErrorExists = 17;      // EEXIST
    private const int ErrorCrossDevice = 18; // EXDEV
    private const int ErrorNotPermitted = 1; // EPERM: a file system without hard links (some FUSE mounts)
    private const int ErrorNotSupported = 95; // EOPNOTSUPP
    private const int ErrorTooManyLinks = 31; // EMLINK

    /// <summary>Flushes a file's or a directory's data and metadata to the device (fsync(2)).</summary>
    public static void Fsync(string path, bool isDirectory)
    {
        EnsureLinux();
        var fd = Open(path, ReadOnly | CloseOnExec, 0);
        if (fd < 0) throw ErrorFor("open", path);
        try
        {
            int rc;
            do rc = fsync(fd); while (rc != 0 && Marshal.GetLastPInvokeError() == ErrorInterrupted);
            // A few file systems (some FUSE mounts) refuse fsync on a directory; the rename is then as
            // durable as that file system can make it, and failing the checkpoint would not help.
            if (rc != 0 && !(isDirectory && Marshal.GetLastPInvokeError() == ErrorInvalid)) throw ErrorFor("fsync", path);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Opens (creating if needed) a lock file; returns its descriptor.</summary>
    public static int OpenLockFile(string path)
    {
        EnsureLinux();
        var fd = Open(path, ReadWrite | Create | CloseOnExec, Convert.ToInt32("644", 8));
        if (fd < 0) throw ErrorFor("open", path);
        return fd;
    }

    /// <summary>Takes an exclusive flock without waiting; false when another open file holds it.</summary>
    public static bool TryLockExclusive(int fd, string path)
    {
        if (flock(fd, LockExclusive | LockNonBlocking) == 0) return true;
        if (Marshal.GetLastPInvokeError() == ErrorWouldBlock) return false;
        throw ErrorFor("flock", path);
    }

    /// <summary>
    /// Opens an existing file read-only for an flock (the version pins of <see cref="VersionLock"/>); -1 when it
    /// does not exist (any other failure throws).
    /// </summary>
    public static int OpenExisting(string path)
    {
        EnsureLinux();
        var fd = Open(path, ReadOnly | CloseOnExec, 0);
        if (fd >= 0) return fd;
        var errno = Marshal.GetLastPInvokeError();
        if (errno is ErrorNoEntry or ErrorNotDirectory) return -1;
        throw ErrorFor("open", path);
    }

    /// <summary>Takes a shared flock without waiting; false when an exclusive one is held.</summary>
    public static bool TryLockShared(int fd, string path)
    {
        if (flock(fd, LockShared | LockNonBlocking) == 0) return true;
        if (Marshal.GetLastPInvokeError() == ErrorWouldBlock) return false;
        throw ErrorFor("flock", path);
    }

    /// <summary>Replaces the content of an open file (the lock file's holder note).</summary>
    public static void Overwrite(int fd, byte[] content, string path)
    {
        if (ftruncate(fd, 0) != 0) throw ErrorFor("ftruncate", path);
        var written = pwrite(fd, content, (nuint)content.Length, 0);
        if (written != content.Length) throw ErrorFor("pwrite", path);
    }

    /// <summary>Reads up to <paramref name="maxBytes"/> from the start of an open file.</summary>
    public static byte[] ReadPrefix(int fd, int maxBytes)
    {
        var buffer = new byte[maxBytes];
        var read = pread(fd, buffer, (nuint)buffer.Length, 0);
        return read <= 0 ? [] : buffer.AsSpan(0, (int)read).ToArray();
    }

    public static void Close(int fd) => close(fd);

    /// <summary>
    /// rename(2): atomically replaces <paramref name="to"/> (a file or a symlink, never followed) with <paramref name="from"/>.
    /// .NET's File.Move looks through a symlink to a directory at the destination; this does not.
    /// </summary>
    public static void Rename(string from, string to)
    {
        EnsureLinux();
        if (rename(from, to) != 0) throw ErrorFor("rename", to);
    }

    /// <summary>
    /// link(2): a second name for <paramref name="existing"/>'s data. False when this file system cannot give one
    /// (no hard links, another device, too many links): the caller copies instead. Any other failure throws.
    /// </summary>
    public static bool TryHardLink(string existing, string newPath)
    {
        EnsureLinux();
        if (link(existing, newPath) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno is ErrorCrossDevice or ErrorNotPermitted or ErrorNotSupported or ErrorTooManyLinks) return false;
        if (errno == ErrorExists) throw new IOException($"link failed on {newPath}: it exists already (errno {errno})", errno);
        throw ErrorFor("link", newPath);
    }

    /// <summary>
    /// (device, inode) of a path, following links; null when it does not exist or this libc has no <c>stat</c>
    /// symbol (glibc before 2.33): callers then treat two paths as different files. Both 64-bit Linux ABIs
    /// (x86-64 and the generic one of arm64) start <c>struct stat</c> with st_dev then st_ino, 8 bytes each.
    /// </summary>
    public static (ulong Device, ulong Inode)? Identity(string path)
    {
        EnsureLinux();
        if (statUnavailable) return null;
        var buffer = new byte[256]; // larger than struct stat on either ABI (144 / 128 bytes)
        try
        {
            if (stat(path, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException)
        {
            statUnavailable = true;
            return null;
        }
        return (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
    }

    private static volatile bool statUnavailable;

    /// <summary>
    /// True for "the device is full" (ENOSPC) or "the quota is used up" (EDQUOT): .NET and this class put the
    /// errno in <see cref="Exception.HResult"/> (measured: a full tmpfs gives HResult 28).
    /// </summary>
    public static bool IsOutOfSpace(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is IOException { HResult: ErrorNoSpace or ErrorQuota }) return true;
        return false;
    }

    private static void EnsureLinux()
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("the checkpoint store needs Linux (fsync of directories, flock)");
    }

    private static IOException ErrorFor(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} failed on {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }

    [DllImport(LibC, EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport(LibC, SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport(LibC, EntryPoint = "rename", SetLastError = true)]
    private static extern int rename([MarshalAs(UnmanagedType.LPUTF8Str)] string from, [MarshalAs(UnmanagedType.LPUTF8Str)] string to);

    [DllImport(LibC, SetLastError = true)]
    private static extern int close(int fd);

    [DllImport(LibC, EntryPoint = "link", SetLastError = true)]
    private static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    [DllImport(LibC, EntryPoint = "stat", SetLastError = true)]
    private static extern int stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);

    [DllImport(LibC, SetLastError = true)]
    private static extern int flock(int fd, int operation);

    [DllImport(LibC, SetLastError = true)]
    private static extern int ftruncate(int fd, long length);

    [DllImport(LibC, SetLastError = true)]
    private static extern nint pwrite(int fd, byte[] buffer, nuint count, long offset);

    [DllImport(LibC, SetLastError = true)]
    private static extern nint pread(int fd, byte[] buffer, nuint count, long offset);
}
