using System.Security.Cryptography;
using System.Text.Json;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Checks one version directory against its manifest. Problems that are facts about the bytes on disk
/// (missing, wrong size, wrong hash, stray file, bad manifest) become entries in the verdict; I/O faults
/// (EIO, a flaky volume) are thrown so the retry policy can try again.
/// </summary>
internal static class CheckpointVerifier
{
    /// <summary>A manifest larger than this is not one we wrote (ours are a few KiB).</summary>
    private const long MaxManifestBytes = 16L * 1024 * 1024;

    private const int HashBufferBytes = 1 << 20;

    /// <param name="knownGood">Blobs the calling process already hashed (the writer's): not hashed again while unchanged.</param>
    public static async Task<CheckpointVerification> VerifyAsync(string root, long version, CheckpointVerificationLevel level, CancellationToken ct, KnownGoodBlobs? knownGood = null)
    {
        var name = CheckpointVersion.DirectoryName(version);
        var directory = Path.Combine(root, name);
        var problems = new List<string>();
        if (!Directory.Exists(directory))
            return new CheckpointVerification(version, level, null, [$"{name} does not exist"]);

        // Pinned while it is read: retention skips a version a reader holds (see VersionLock).
        var (outcome, pin) = VersionLock.TryAcquire(root, version, exclusive: false);
        using var _ = pin;
        if (outcome == VersionLock.Outcome.Busy)
            return new CheckpointVerification(version, level, null, [$"{name} is being deleted by retention"]);

        var manifest = await ReadManifestAsync(directory, problems, ct);
        if (manifest is null) return new CheckpointVerification(version, level, null, problems);
        problems.AddRange(ManifestProblems(manifest, version));
        if (problems.Count > 0) return new CheckpointVerification(version, level, manifest, problems);

        // Exactly the listed files and manifest.json: nothing more, no directories, no links.
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null) problems.Add($"{entry.Name}: is a symbolic link (a checkpoint holds only regular files)");
            else if (entry is DirectoryInfo) problems.Add($"{entry.Name}/: unexpected directory");
            else if (entry.Name is not (CheckpointLayout.ManifestFileName or CheckpointLayout.ManifestChecksumFileName) && !manifest.Files.ContainsKey(entry.Name))
                problems.Add($"{entry.Name}: unexpected file (not in the manifest)");
        }

        foreach (var (file, expected) in manifest.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            var path = Path.Combine(directory, file);
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                if (!Directory.Exists(path)) problems.Add($"{file}: missing");
                continue;
            }
            if (info.LinkTarget is not null) continue; // already reported above
            if (info.Length != expected.Size)
            {
                problems.Add($"{file}: size {info.Length} bytes, manifest says {expected.Size}");
                continue;
            }
            if (expected.Shared)
            {
                await VerifySharedAsync(root, file, path, expected, level, problems, knownGood, ct);
                continue;
            }
            if (level == CheckpointVerificationLevel.Full)
            {
                var actual = await Sha256HexAsync(path, ct);
                if (actual is null) problems.Add($"{file}: missing");
                else if (actual != expected.Sha256)
                    problems.Add($"{file}: sha256 mismatch (manifest {Short(expected.Sha256)}, file {Short(actual)})");
            }
        }
        return new CheckpointVerification(version, level, manifest, problems);
    }

    /// <summary>
    /// A shared artefact: the version's file (normally a hard link to the blob) was checked for size above; its blob must
    /// exist as a regular file of the same size. Full: the content hashes to the name, checked once when the version's
    /// file is the blob itself (same inode), on both otherwise, and not at all for a blob the writer already hashed.
    /// </summary>
    private static async Task VerifySharedAsync(string root, string file, string path, CheckpointFileEntry expected, CheckpointVerificationLevel level,
                                                List<string> problems, KnownGoodBlobs? knownGood, CancellationToken ct)
    {
        var blobName = $"{CheckpointBlobs.DirectoryName}/{CheckpointBlobs.Algorithm}/{Short(expected.Sha256)}";
        var blob = new FileInfo(CheckpointBlobs.PathOf(root, expected.Sha256));
        if (!blob.Exists)
        {
            problems.Add($"{file}: shared blob {blobName} is missing");
            return;
        }
        if (blob.LinkTarget is not null)
        {
            problems.Add($"{file}: shared blob {blobName} is a symbolic link (blobs are regular files)");
            return;
        }
        if (blob.Length != expected.Size)
        {
            problems.Add($"{file}: shared blob {blobName} has {blob.Length} bytes, manifest says {expected.Size}");
            return;
        }
        if (level != CheckpointVerificationLevel.Full) return;
        var sameFile = PosixFileSystem.Identity(path) is { } linked && PosixFileSystem.Identity(blob.FullName) == linked;
        if (sameFile && knownGood?.Contains(expected.Sha256, blob.FullName) == true) return;
        foreach (var (what, candidate) in sameFile ? [(file, path)] : new[] { (file, path), ($"shared blob {blobName}", blob.FullName) })
        {
            var actual = await Sha256HexAsync(candidate, ct);
            if (actual is null)
            {
                problems.Add($"{what}: missing");
                return;
            }
            if (actual != expected.Sha256)
            {
                problems.Add($"{what}: sha256 mismatch (manifest {Short(expected.Sha256)}, file {Short(actual)})");
                return;
            }
        }
        if (sameFile) knownGood?.Remember(expected.Sha256, blob.FullName);
    }

    /// <summary>Lowercase hex SHA-256 of a file, or null if it vanished (deleted under us).</summary>
    public static async Task<string?> Sha256HexAsync(string path, CancellationToken ct)
    {
        try
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete,
                HashBufferBytes, FileOptions.Asynchronous | FileOptions.SequentialScan);
            var hash = await SHA256.HashDataAsync(stream, ct);
            return Convert.ToHexStringLower(hash);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Consistency rules a parsed manifest must meet; each broken rule is one line.</summary>
    public static IEnumerable<string> ManifestProblems(CheckpointManifest manifest, long directoryVersion)
    {
        const string m = CheckpointLayout.ManifestFileName;
        if (!CheckpointManifest.ReadableFormatVersions.Contains(manifest.FormatVersion))
            yield return $"{m}: format_version {manifest.FormatVersion} is not supported (this build reads {string.Join(" and ", CheckpointManifest.ReadableFormatVersions)})";
        else if (manifest.FormatVersion < 2 && manifest.Files.FirstOrDefault(f => f.Value.Shared) is { Key: { } sharedInV1 })
            yield return $"{m}: {sharedInV1}: format_version {manifest.FormatVersion} has no shared files (format 2 added them)";
        if (manifest.FormatVersion < 2 && manifest.PublishOnly)
            yield return $"{m}: format_version {manifest.FormatVersion} has no publish_only versions (format 2 added them)";
        if (manifest.Version != directoryVersion)
            yield return $"{m}: says version {manifest.Version} but lives in {CheckpointVersion.DirectoryName(directoryVersion)}";
        if (manifest.Parent is { } parent && (parent < CheckpointVersion.First || parent >= directoryVersion))
            yield return $"{m}: parent {parent} is not an older version";
        if (manifest.Files.Count == 0) yield return $"{m}: lists no files";
        foreach (var (file, entry) in manifest.Files)
        {
            if (CheckpointLayout.ArtefactNameProblem(file) is { } nameProblem) yield return $"{m}: {nameProblem}";
            if (entry.Sha256.Length != 64 || !entry.Sha256.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
                yield return $"{m}: {file}: sha256 is not 64 lowercase hex digits";
            if (entry.Size < 0) yield return $"{m}: {file}: negative size";
        }
        foreach (var (topic, partitions) in manifest.Offsets)
        {
            if (string.IsNullOrWhiteSpace(topic)) yield return $"{m}: offsets has an empty topic name";
            foreach (var (partition, offset) in partitions)
                if (partition < 0 || offset < 0) yield return $"{m}: offsets {topic}[{partition}] = {offset} is negative";
        }
        foreach (var name in manifest.Metrics.Keys)
            if (string.IsNullOrWhiteSpace(name)) yield return $"{m}: metrics has an empty name";
    }

    /// <summary>
    /// Reads and parses manifest.json after checking it against manifest.sha256. A manifest that does not
    /// match its checksum is not trusted at all (null): its parent or offsets could be the damaged part.
    /// </summary>
    public static async Task<CheckpointManifest?> ReadManifestAsync(string directory, List<string> problems, CancellationToken ct)
    {
        const string m = CheckpointLayout.ManifestFileName;
        var manifestBytes = await ReadSmallFileAsync(Path.Combine(directory, m), problems, ct);
        var checksumBytes = await ReadSmallFileAsync(Path.Combine(directory, CheckpointLayout.ManifestChecksumFileName), problems, ct);
        if (manifestBytes is null || checksumBytes is null) return null;
        if (ManifestChecksum.Problem(manifestBytes, checksumBytes) is { } mismatch)
        {
            problems.Add(mismatch);
            return null;
        }
        try
        {
            return CheckpointJson.DeserializeManifest(manifestBytes);
        }
        catch (JsonException e)
        {
            problems.Add($"{m}: not a valid manifest: {e.Message}");
            return null;
        }
    }

    private static async Task<byte[]?> ReadSmallFileAsync(string path, List<string> problems, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > MaxManifestBytes)
            {
                problems.Add($"{name}: {info.Length} bytes, larger than any manifest ({MaxManifestBytes} bytes)");
                return null;
            }
            return await File.ReadAllBytesAsync(path, ct);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            problems.Add($"{name}: missing");
            return null;
        }
    }

    private static string Short(string hex) => hex.Length > 12 ? hex[..12] + "…" : hex;
}
