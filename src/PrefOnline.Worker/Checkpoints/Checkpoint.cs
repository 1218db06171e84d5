namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// A version that passed full verification when it was loaded (or was just written): its manifest and
/// read access to its artefacts. The store never changes a published version, so what was verified is
/// what is read; only retention can delete it, and retention never deletes <c>latest</c> or <c>good</c>.
/// </summary>
public sealed class Checkpoint
{
    internal Checkpoint(string root, CheckpointManifest manifest)
    {
        Manifest = manifest;
        DirectoryPath = CheckpointLayout.VersionPath(root, manifest.Version);
    }

    public CheckpointManifest Manifest { get; }

    /// <summary>Absolute or root-relative path of <c>vNNNNNN/</c>, as the store was opened.</summary>
    public string DirectoryPath { get; }

    public long Version => Manifest.Version;
    public long? Parent => Manifest.Parent;
    public DateTimeOffset Created => Manifest.Created;
    public IReadOnlyDictionary<string, double> Metrics => Manifest.Metrics;

    /// <summary>A policy published between two checkpoints: no state to resume from (<see cref="CheckpointManifest.PublishOnly"/>).</summary>
    public bool PublishOnly => Manifest.PublishOnly;

    /// <summary>topic → partition → next offset to read (seek there on partition assignment).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<int, long>> Offsets => Manifest.Offsets;

    public IEnumerable<string> FileNames => Manifest.Files.Keys.Order(StringComparer.Ordinal);

    public bool Contains(string fileName) => Manifest.Files.ContainsKey(fileName);

    /// <summary>
    /// The next offset to read for one partition, or null when this checkpoint has never absorbed from it
    /// (then the consumer's own reset policy applies, e.g. auto.offset.reset=earliest).
    /// </summary>
    public long? NextOffset(string topic, int partition) =>
        Manifest.Offsets.TryGetValue(topic, out var partitions) && partitions.TryGetValue(partition, out var offset) ? offset : null;

    /// <summary>
    /// Path of an artefact, for readers that take a path (e.g. SafeTensorsFile.Read). A shared artefact
    /// (<see cref="CheckpointFileEntry.Shared"/>) is there too: a hard link to its blob, so the path reads the blob's bytes.
    /// </summary>
    public string GetPath(string fileName)
    {
        if (!Manifest.Files.ContainsKey(fileName))
            throw new KeyNotFoundException($"checkpoint {CheckpointVersion.DirectoryName(Version)} has no '{fileName}' (it holds: {string.Join(", ", FileNames)})");
        return Path.Combine(DirectoryPath, fileName);
    }

    /// <summary>Opens an artefact for reading (sequential, 1 MiB buffer).</summary>
    public FileStream OpenRead(string fileName) =>
        new(GetPath(fileName), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);

    public override string ToString() => CheckpointVersion.DirectoryName(Version);
}
