using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The store's content-addressed area, <c>&lt;root&gt;/blobs/sha256/&lt;hex&gt;</c>: what never changes between versions (the
/// frozen reference or LoRA base weights, the tokenizer files) is written there once, and every version that lists it
/// as shared holds a hard link to it. A blob is immutable: it appears by rename of a fully written, fsynced temp file
/// (<c>.tmp-&lt;hex&gt;-&lt;guid&gt;</c>, removed by the next writer after a crash) and is removed only by
/// <see cref="CheckpointStore"/>'s garbage collection once no version directory references it.
/// <para>Hashing a multi-GB file is the cost to avoid: a source file is hashed once per process (keyed by path, size
/// and modification time), and a blob this process wrote or verified is not hashed again while its inode, size and
/// modification time are unchanged (<see cref="KnownGood"/>, consulted by the writer's own verifications only: a
/// <c>checkpoint verify</c> in another process hashes everything).</para>
/// </summary>
internal sealed class CheckpointBlobs(string root, ILogger logger)
{
    public const string DirectoryName = "blobs";
    public const string Algorithm = "sha256";
    private const string TempPrefix = ".tmp-";
    private const int BufferBytes = 1 << 20;

    private readonly ConcurrentDictionary<string, (long Size, long Modified, string Sha256)> hashedSources = new(StringComparer.Ordinal);

    /// <summary>Blobs whose content this process has hashed (written or verified), by sha256.</summary>
    public KnownGoodBlobs KnownGood { get; } = new();

    public string Directory => DirectoryOf(root);

    public static string DirectoryOf(string root) => Path.Combine(root, DirectoryName, Algorithm);

    public static string PathOf(string root, string sha256) => Path.Combine(DirectoryOf(root), sha256);

    /// <summary>True for a blob's file name: 64 lowercase hex digits.</summary>
    public static bool IsBlobName(string name) => name.Length == 64 && name.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    /// <summary>
    /// Makes sure the blob holding <paramref name="sourcePath"/>'s bytes exists and is sound, writing it when it does
    /// not (or when the one on disk is damaged), and returns its manifest entry (shared). A second version with the
    /// same content writes nothing.
    /// </summary>
    public async Task<CheckpointFileEntry> StoreAsync(string sourcePath, CancellationToken ct)
    {
        var source = Path.GetFullPath(sourcePath);
        var info = new FileInfo(source);
        if (!info.Exists) throw new FileNotFoundException($"shared artefact source {source} does not exist", source);
        var sha = await SourceHashAsync(source, info, ct);
        var blob = PathOf(root, sha);
        var existing = new FileInfo(blob);
        if (existing.Exists && existing.Length == info.Length)
        {
            if (KnownGood.Contains(sha, blob)) return new CheckpointFileEntry(sha, info.Length, Shared: true);
            if (await CheckpointVerifier.Sha256HexAsync(blob, ct) == sha)
            {
                KnownGood.Remember(sha, blob);
                return new CheckpointFileEntry(sha, info.Length, Shared: true);
            }
            logger.LogError("Blob {Blob} in {Root} is damaged (its bytes no longer hash to its name); writing it again from {Source}", sha, root, source);
        }
        await WriteAsync(source, sha, ct);
        return new CheckpointFileEntry(sha, info.Length, Shared: true);
    }

    /// <summary>
    /// Gives the blob a second name at <paramref name="target"/> (in a version's temp directory): a hard link, or a copy
    /// on a file system without hard links (correct, but then the version holds its own copy).
    /// </summary>
    public async Task LinkAsync(string sha256, string target, CancellationToken ct)
    {
        var blob = PathOf(root, sha256);
        if (PosixFileSystem.TryHardLink(blob, target)) return;
        logger.LogWarning("The file system of {Root} gives no hard links: copying blob {Blob} into the version instead (the version costs its full size)", root, sha256);
        await using var from = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using var to = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferBytes, FileOptions.Asynchronous);
        await from.CopyToAsync(to, ct);
        to.Flush(flushToDisk: true);
    }

    /// <summary>The blobs on disk (sha256 names), ascending; temp files and foreign names are not listed.</summary>
    public IReadOnlyList<string> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        return System.IO.Directory.EnumerateFiles(Directory).Select(Path.GetFileName).OfType<string>().Where(IsBlobName).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Temp files of blob writes a crash interrupted (names relative to the store root).</summary>
    public IReadOnlyList<string> FindLeftovers()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        return System.IO.Directory.EnumerateFiles(Directory).Select(Path.GetFileName).OfType<string>()
            .Where(n => n.StartsWith(TempPrefix, StringComparison.Ordinal))
            .Select(n => Path.Combine(DirectoryName, Algorithm, n)).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Unlinks a blob no version references (the caller holds the store lock and has just checked that).</summary>
    public void Delete(string sha256)
    {
        File.Delete(PathOf(root, sha256));
        KnownGood.Forget(sha256);
    }

    private async Task<string> SourceHashAsync(string source, FileInfo info, CancellationToken ct)
    {
        var modified = info.LastWriteTimeUtc.Ticks;
        if (hashedSources.TryGetValue(source, out var known) && known.Size == info.Length && known.Modified == modified) return known.Sha256;
        var sha = await CheckpointVerifier.Sha256HexAsync(source, ct) ?? throw new FileNotFoundException($"shared artefact source {source} vanished while it was hashed", source);
        hashedSources[source] = (info.Length, modified, sha);
        return sha;
    }

    /// <summary>temp → write while hashing → fsync → rename → fsync the directory. The bytes written must hash to <paramref name="sha256"/>.</summary>
    private async Task WriteAsync(string source, string sha256, CancellationToken ct)
    {
        EnsureDirectory();
        var temp = Path.Combine(Directory, $"{TempPrefix}{sha256}-{Guid.NewGuid():N}");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, FileOptions.Asynchronous | FileOptions.SequentialScan))
            await using (var to = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferBytes, FileOptions.Asynchronous))
            {
                var buffer = new byte[BufferBytes];
                int read;
                while ((read = await from.ReadAsync(buffer, ct)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await to.WriteAsync(buffer.AsMemory(0, read), ct);
                }
                to.Flush(flushToDisk: true);
            }
            var written = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (written != sha256)
            {
                hashedSources.TryRemove(source, out _);
                throw new IOException($"{source} changed while it was copied into blob {sha256} (it now hashes to {written}); the write is retried from a fresh hash");
            }
            PosixFileSystem.Rename(temp, PathOf(root, sha256));
            PosixFileSystem.Fsync(Directory, isDirectory: true);
            KnownGood.Remember(sha256, PathOf(root, sha256));
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left for the next writer's start-up cleanup.
            }
            throw;
        }
    }

    private void EnsureDirectory()
    {
        if (System.IO.Directory.Exists(Directory)) return;
        var parent = Path.Combine(root, DirectoryName);
        var createdParent = !System.IO.Directory.Exists(parent);
        System.IO.Directory.CreateDirectory(Directory);
        PosixFileSystem.Fsync(parent, isDirectory: true);
        if (createdParent) PosixFileSystem.Fsync(root, isDirectory: true);
    }
}

/// <summary>
/// Blobs whose sha256 this process has computed, each with the identity of the file it hashed (device, inode, size,
/// modification time): while all four are unchanged the content is taken as verified, so the writer's verifications
/// do not hash a multi-GB base again on every write. Thread-safe.
/// </summary>
internal sealed class KnownGoodBlobs
{
    private readonly ConcurrentDictionary<string, (ulong Device, ulong Inode, long Size, long Modified)> entries = new(StringComparer.Ordinal);

    public bool Contains(string sha256, string path) =>
        entries.TryGetValue(sha256, out var known) && IdentityOf(path) is { } now && now == known;

    public void Remember(string sha256, string path)
    {
        if (IdentityOf(path) is { } identity) entries[sha256] = identity;
    }

    public void Forget(string sha256) => entries.TryRemove(sha256, out _);

    /// <summary>Null when the file is gone or the inode cannot be read (then nothing is taken as known).</summary>
    private static (ulong, ulong, long, long)? IdentityOf(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || PosixFileSystem.Identity(path) is not { } id) return null;
        return (id.Device, id.Inode, info.Length, info.LastWriteTimeUtc.Ticks);
    }
}
