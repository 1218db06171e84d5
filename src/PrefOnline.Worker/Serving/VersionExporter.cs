using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.PolicyDistribution;

namespace PrefOnline.Worker.Serving;

/// <summary>Whether a version's export holds the full weights or a LoRA adapter (PEFT layout) for a base model the server already has.</summary>
public enum ServingExportKind
{
    Full = 0,
    Adapter = 1,
}

/// <summary>One version written under an export root: <paramref name="Path"/> = <c>&lt;root&gt;/v000012</c>.</summary>
public sealed record VersionExport(long Version, string Sha256, ServingExportKind Kind, string DirectoryName, string Path);

/// <summary>
/// Writes each handed-off version as a Hugging Face directory under one root, for servers that read a shared volume:
/// <code>
/// &lt;root&gt;/v000012/      config.json, model.safetensors (the weights exactly as the policy event announces them),
///                      the tokenizer files; or, for an adapter, adapter_config.json + adapter_model.safetensors,
///                      the tokenizer files and base → ../base-&lt;sha&gt; (a relative symlink)
/// &lt;root&gt;/base-&lt;sha&gt;/  the LoRA base as a Hugging Face directory (config.json, model.safetensors, tokenizer files),
///                      written once per base (sha: the first 16 hex digits of its weights' SHA-256), removed once no
///                      version links it; what the server was started with, and what `prefonline generate` merges with
///                      the adapter when it is given the version directory
/// &lt;root&gt;/current  →  v000012   a symlink, swapped atomically (rename(2) of a new link over it)
/// &lt;root&gt;/current.json         {"version":12,"directory":"v000012","sha256":"…","kind":"full","files":{…}} for watchers that cannot follow links
/// </code>
/// A version directory appears complete or not at all (written as a hidden temp directory, then renamed), every file is
/// checked against the SHA-256 the event lists while it is copied, and a version already exported with the same weights
/// is not written again (idempotent). After the pointer moves, only the newest <c>KeepVersions</c> versions besides the
/// current one are kept. One exporter per root; its methods run one at a time. Linux only (rename, fsync).
/// </summary>
public sealed class VersionExporter
{
    /// <summary>Inside each version directory: what was exported (version, weights hash, kind), for idempotence.</summary>
    public const string MarkerFile = ".prefonline-export.json";

    public const string CurrentLink = "current";
    public const string CurrentJson = "current.json";
    public const string WeightsFile = PolicyCheckpoint.WeightsFile;

    /// <summary>PEFT's adapter files (issue 14 item 3 writes them into checkpoints and policy events).</summary>
    public const string AdapterConfig = "adapter_config.json";
    public const string AdapterWeights = "adapter_model.safetensors";

    /// <summary>Prefix of a LoRA base's directory under the root (<c>base-&lt;16 hex digits&gt;</c>).</summary>
    public const string BasePrefix = "base-";

    private const int CopyBuffer = 1 << 20;

    private readonly int keepVersions;
    private readonly ILogger logger;
    private readonly SemaphoreSlim gate = new(1, 1);
    private bool cleaned;

    public VersionExporter(string root, int keepVersions, ILogger logger)
    {
        Root = System.IO.Path.GetFullPath(root);
        this.keepVersions = keepVersions;
        this.logger = logger;
    }

    public string Root { get; }

    /// <summary>
    /// The kind of export a version's files make: an adapter when they hold PEFT's adapter weights, else full weights.
    /// The one place that decides it, so a learner that writes adapters needs no change here.
    /// </summary>
    public static ServingExportKind KindOf(IEnumerable<string> fileNames) =>
        fileNames.Contains(AdapterWeights, StringComparer.Ordinal) ? ServingExportKind.Adapter : ServingExportKind.Full;

    /// <summary>
    /// Makes <paramref name="version"/> the current export: writes its directory unless it is there with the same weights,
    /// swaps <c>current</c> and <c>current.json</c> to it, then applies retention. Failures are
    /// <see cref="ServingHandOffException"/>s (transient for I/O errors, permanent for files that do not match the event).
    /// </summary>
    public async Task<VersionExport> ExportAsync(ServedVersion version, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Export(version, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var missing = e is FileNotFoundException or DirectoryNotFoundException;
            throw new ServingHandOffException(missing
                ? $"a file of {version} is gone ({e.Message}); the next version is exported from its own checkpoint"
                : $"exporting {version} to {Root} failed: {e.Message}", transient: !missing, e);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The version <c>current.json</c> names, or null when there is none (or it cannot be read).</summary>
    public (long Version, string Sha256)? ReadCurrent()
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(System.IO.Path.Combine(Root, CurrentJson)));
            return (document.RootElement.GetProperty("version").GetInt64(), document.RootElement.GetProperty("sha256").GetString()!);
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    private VersionExport Export(ServedVersion version, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Root);
        if (!cleaned)
        {
            RemoveLeftovers();
            cleaned = true;
        }
        var kind = KindOf(version.Files.Keys);
        var name = CheckpointVersion.DirectoryName(version.Version);
        var target = System.IO.Path.Combine(Root, name);
        if (ExportedAlready(target, version))
        {
            logger.LogDebug("Serving export {Root}/{Name} already holds {Version}", Root, name, version);
        }
        else
        {
            var temp = System.IO.Path.Combine(Root, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
            Directory.CreateDirectory(temp);
            try
            {
                WriteFiles(temp, version, kind, cancellationToken);
                ReplaceDirectory(temp, target);
            }
            finally
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            logger.LogInformation("Exported {Version} to {Path} ({Kind})", version, target, kind.ToString().ToLowerInvariant());
        }
        var export = new VersionExport(version.Version, version.Sha256, kind, name, target);
        PointCurrentAt(export, version);
        ApplyRetention(name);
        return export;
    }

    private void WriteFiles(string directory, ServedVersion version, ServingExportKind kind, CancellationToken cancellationToken)
    {
        var written = new Dictionary<string, string>(StringComparer.Ordinal);
        string? baseDirectory = null;
        if (kind == ServingExportKind.Adapter && !version.Files.ContainsKey(StateFiles.Policy) && version.Files.TryGetValue(StateFiles.Reference, out var baseWeights))
        {
            // A LoRA version of this build holds no merged weights: the adapter goes with a link to its base, exported once.
            baseDirectory = EnsureBase(baseWeights, version, cancellationToken);
            File.CreateSymbolicLink(System.IO.Path.Combine(directory, StoredPolicy.AdapterBaseLink), "../" + baseDirectory);
        }
        foreach (var (name, source) in version.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (baseDirectory is not null && name == StateFiles.Reference) continue;
            var expected = name == StateFiles.Policy ? version.Sha256 : version.Event.Files.GetValueOrDefault(name);
            // The learner's weights file becomes Hugging Face's model.safetensors, byte for byte (its hash is the event's).
            var targetName = name == StateFiles.Policy ? WeightsFile : name;
            written[targetName] = CopyVerified(source, System.IO.Path.Combine(directory, targetName), expected, version);
        }
        // A LoRA version of an older build holds the adapter and the merged weights: the directory gets config.json for those too.
        if ((kind == ServingExportKind.Full || written.ContainsKey(WeightsFile)) && !written.ContainsKey(PolicyCheckpoint.ConfigFile))
        {
            // The learner's weights file carries its config.json in the safetensors metadata: a directory needs it beside them.
            var weights = System.IO.Path.Combine(directory, WeightsFile);
            if (!File.Exists(weights)) throw new ServingHandOffException($"{version} lists no weights ({StateFiles.Policy}) to export", transient: false);
            var config = ConfigOf(weights, version);
            WriteDurable(System.IO.Path.Combine(directory, PolicyCheckpoint.ConfigFile), config);
            written[PolicyCheckpoint.ConfigFile] = Sha256Hex(System.Text.Encoding.UTF8.GetBytes(config));
        }
        var marker = new JsonObject
        {
            ["version"] = version.Version,
            ["sha256"] = version.Sha256,
            ["kind"] = kind.ToString().ToLowerInvariant(),
            ["checkpoint"] = CheckpointVersion.DirectoryName(version.Checkpoint),
            ["base"] = baseDirectory,
            ["files"] = new JsonObject(written.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => KeyValuePair.Create(f.Key, (JsonNode?)f.Value))),
        };
        WriteDurable(System.IO.Path.Combine(directory, MarkerFile), marker.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        PosixFileSystem.Fsync(directory, isDirectory: true);
    }

    /// <summary>
    /// <c>&lt;root&gt;/base-&lt;sha&gt;/</c> for a LoRA version's base weights (<c>reference.safetensors</c>, checked against the
    /// event's hash while copied): model.safetensors, the config.json its metadata carries, and the version's tokenizer
    /// files. Written aside and renamed in, once; returns its directory name.
    /// </summary>
    private string EnsureBase(string weights, ServedVersion version, CancellationToken cancellationToken)
    {
        var expected = version.Event.Files.GetValueOrDefault(StateFiles.Reference)
                       ?? throw new ServingHandOffException($"{version} lists no hash for its base ({StateFiles.Reference})", transient: false);
        var name = BasePrefix + expected[..16].ToLowerInvariant();
        var target = System.IO.Path.Combine(Root, name);
        if (File.Exists(System.IO.Path.Combine(target, MarkerFile))) return name;
        var temp = System.IO.Path.Combine(Root, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var files = new JsonObject { [WeightsFile] = CopyVerified(weights, System.IO.Path.Combine(temp, WeightsFile), expected, version) };
            foreach (var tokenizerFile in PolicyFiles.TokenizerNames.Where(version.Files.ContainsKey))
            {
                cancellationToken.ThrowIfCancellationRequested();
                files[tokenizerFile] = CopyVerified(version.Files[tokenizerFile], System.IO.Path.Combine(temp, tokenizerFile), version.Event.Files.GetValueOrDefault(tokenizerFile), version);
            }
            if (!files.ContainsKey(PolicyCheckpoint.ConfigFile)) WriteDurable(System.IO.Path.Combine(temp, PolicyCheckpoint.ConfigFile), ConfigOf(System.IO.Path.Combine(temp, WeightsFile), version));
            WriteDurable(System.IO.Path.Combine(temp, MarkerFile), new JsonObject { ["base_sha256"] = expected, ["files"] = files }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            PosixFileSystem.Fsync(temp, isDirectory: true);
            ReplaceDirectory(temp, target);
            logger.LogInformation("Exported the LoRA base {Sha} to {Path} (once for every version trained on it)", expected[..12], target);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
        return name;
    }

    /// <summary>The config.json a learner's weights file carries in its safetensors metadata.</summary>
    private static string ConfigOf(string weights, ServedVersion version)
    {
        try
        {
            return SafeTensorsFile.ReadHeader(weights).Metadata.GetValueOrDefault(PolicyCheckpoint.ConfigMetadataKey)
                   ?? throw new ServingHandOffException($"the weights of {version} carry no config ('{PolicyCheckpoint.ConfigMetadataKey}' metadata) and the checkpoint no config.json", transient: false);
        }
        catch (SafeTensorsFormatException e)
        {
            throw new ServingHandOffException($"the weights of {version} are not a valid safetensors file: {e.Problem}", transient: false, e);
        }
    }

    /// <summary>Copies one file while hashing it; a hash other than <paramref name="expected"/> refuses the version (the checkpoint changed under us).</summary>
    private static string CopyVerified(string source, string target, string? expected, ServedVersion version)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, CopyBuffer, FileOptions.SequentialScan))
        using (var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBuffer))
        {
            var buffer = new byte[CopyBuffer];
            int read;
            while ((read = input.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                output.Write(buffer, 0, read);
            }
            output.Flush(flushToDisk: true);
        }
        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (expected is not null && !string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new ServingHandOffException($"{System.IO.Path.GetFileName(source)} of {version} has sha256 {actual[..12]}…, the policy event announced {expected[..Math.Min(12, expected.Length)]}…: not exported", transient: false);
        return actual;
    }

    private static bool ExportedAlready(string target, ServedVersion version)
    {
        var marker = System.IO.Path.Combine(target, MarkerFile);
        if (!File.Exists(marker)) return false;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(marker));
            return document.RootElement.GetProperty("version").GetInt64() == version.Version
                   && document.RootElement.GetProperty("sha256").GetString() == version.Sha256;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false; // rewritten
        }
    }

    /// <summary>Renames the complete temp directory into place; an existing one (other weights under the same number: a new store) is moved aside first.</summary>
    private void ReplaceDirectory(string temp, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
        }
        else
        {
            var aside = System.IO.Path.Combine(Root, $".{System.IO.Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
            Directory.Move(target, aside);
            try
            {
                Directory.Move(temp, target);
            }
            catch
            {
                Directory.Move(aside, target);
                throw;
            }
            Directory.Delete(aside, recursive: true);
        }
        PosixFileSystem.Fsync(Root, isDirectory: true);
    }

    private void PointCurrentAt(VersionExport export, ServedVersion version)
    {
        var link = System.IO.Path.Combine(Root, $".{CurrentLink}.tmp-{Guid.NewGuid():N}");
        File.CreateSymbolicLink(link, export.DirectoryName); // relative: the volume may be mounted anywhere
        PosixFileSystem.Rename(link, System.IO.Path.Combine(Root, CurrentLink));
        var json = new JsonObject
        {
            ["version"] = export.Version,
            ["directory"] = export.DirectoryName,
            ["sha256"] = export.Sha256,
            ["kind"] = export.Kind.ToString().ToLowerInvariant(),
            ["kind_of_event"] = version.Event.Kind.ToString().ToLowerInvariant(),
            ["created"] = version.Event.Created.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture),
            ["files"] = new JsonObject(version.Event.Files.OrderBy(f => f.Key, StringComparer.Ordinal)
                .Select(f => KeyValuePair.Create(f.Key == StateFiles.Policy ? WeightsFile : f.Key, (JsonNode?)f.Value))),
        };
        var temp = System.IO.Path.Combine(Root, $".{CurrentJson}.tmp-{Guid.NewGuid():N}");
        WriteDurable(temp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        PosixFileSystem.Rename(temp, System.IO.Path.Combine(Root, CurrentJson));
        PosixFileSystem.Fsync(Root, isDirectory: true);
    }

    /// <summary>Keeps the current version and the newest <c>KeepVersions</c> others; deletes older version directories.</summary>
    private void ApplyRetention(string current)
    {
        var versions = new DirectoryInfo(Root).EnumerateDirectories()
            .Select(d => (Directory: d, Parsed: CheckpointVersion.TryParseDirectoryName(d.Name, out var v) ? v : (long?)null))
            .Where(d => d.Parsed is not null && d.Directory.Name != current && d.Directory.LinkTarget is null)
            .OrderByDescending(d => d.Parsed)
            .Skip(keepVersions)
            .ToList();
        foreach (var (directory, _) in versions)
        {
            try
            {
                directory.Delete(recursive: true);
                logger.LogDebug("Serving export {Root}: deleted {Name} (retention)", Root, directory.Name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Serving export {Root}: could not delete {Name} ({Error}); tried again after the next hand-off", Root, directory.Name, e.Message);
            }
        }

        // LoRA bases no remaining version links (the version directories were deleted first: a base still linked stays).
        var linked = new DirectoryInfo(Root).EnumerateDirectories()
            .Where(d => CheckpointVersion.TryParseDirectoryName(d.Name, out _))
            .Select(d => new FileInfo(System.IO.Path.Combine(d.FullName, StoredPolicy.AdapterBaseLink)).LinkTarget)
            .OfType<string>().Select(System.IO.Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        foreach (var unused in new DirectoryInfo(Root).EnumerateDirectories(BasePrefix + "*").Where(d => d.LinkTarget is null && !linked.Contains(d.Name)))
        {
            try
            {
                unused.Delete(recursive: true);
                logger.LogInformation("Serving export {Root}: deleted the LoRA base {Name}, which no exported version uses any more", Root, unused.Name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Serving export {Root}: could not delete {Name} ({Error}); tried again after the next hand-off", Root, unused.Name, e.Message);
            }
        }
    }

    /// <summary>Temp directories and links a crashed earlier process left behind (this learner is the root's only writer).</summary>
    private void RemoveLeftovers()
    {
        foreach (var entry in new DirectoryInfo(Root).EnumerateFileSystemInfos(".*"))
        {
            if (!entry.Name.Contains(".tmp-", StringComparison.Ordinal) && !entry.Name.Contains(".old-", StringComparison.Ordinal)) continue;
            try
            {
                if (entry is DirectoryInfo { LinkTarget: null } directory) directory.Delete(recursive: true);
                else entry.Delete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Serving export {Root}: could not remove the leftover {Name} ({Error})", Root, entry.Name, e.Message);
            }
        }
    }

    private static void WriteDurable(string path, string text)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        file.Write(System.Text.Encoding.UTF8.GetBytes(text));
        file.Flush(flushToDisk: true);
    }

    private static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
