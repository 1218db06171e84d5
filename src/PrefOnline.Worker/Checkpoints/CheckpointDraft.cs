namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// What the next checkpoint will hold: named artefacts (each produced by a writer the store calls),
/// the input offsets the state has absorbed, metrics and a config hash. The store adds version,
/// parent, time, hashes and sizes. Names and values are checked here, before anything touches disk.
/// <para>
/// Writers may run more than once: if a transient I/O fault interrupts a write, the whole version
/// is rewritten from scratch into a fresh temp directory. A writer must therefore produce the same
/// bytes each time it is called (serialize a snapshot taken before calling
/// <see cref="CheckpointStore.WriteAsync"/>, not live state that keeps training).
/// </para>
/// Example:
/// <code>
/// var draft = new CheckpointDraft()
///     .AddFileAt("policy.safetensors", (path, ct) => tensorThread.RunAsync(() => SafeTensorsFile.Write(path, policy.StateDict()), ct))
///     .AddFile("replay.jsonl", (stream, ct) => replaySnapshot.WriteAsync(stream, ct))
///     .CopyFile("vocab.json", tokenizerVocabPath)
///     .SetOffset("prefonline.feedback", 0, 1840)
///     .SetMetric("reward", 0.62)
///     .WithConfigHash(CheckpointConfigHash.Compute(configuration.GetSection("Learning").AsEnumerable()));
/// var checkpoint = await store.WriteAsync(draft, ct);   // durable and `latest` when this returns
/// </code>
/// </summary>
public sealed class CheckpointDraft
{
    private readonly List<CheckpointArtefact> _artefacts = [];
    private readonly SortedDictionary<string, SortedDictionary<int, long>> _offsets = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, double> _metrics = new(StringComparer.Ordinal);

    public string? ConfigHash { get; private set; }

    /// <summary>True after <see cref="AsPublishOnly"/>.</summary>
    public bool IsPublishOnly { get; private set; }

    public IReadOnlyList<string> FileNames => _artefacts.Select(a => a.Name).ToList();

    /// <summary>An artefact written to a stream the store opens (a new file; the store fsyncs and closes it; disposing it is harmless).</summary>
    public CheckpointDraft AddFile(string name, Func<Stream, CancellationToken, ValueTask> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        return Add(new CheckpointArtefact(name, async (path, ct) =>
        {
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous);
            await write(new LeaveOpenStream(file), ct);
            await file.FlushAsync(ct);
        }));
    }

    /// <summary>
    /// An artefact written by a function that takes the path to create (for writers that want a path,
    /// e.g. <c>SafeTensorsFile.Write</c>). The file must exist when the function returns; any other file
    /// it leaves in the directory fails the write.
    /// </summary>
    public CheckpointDraft AddFileAt(string name, Func<string, CancellationToken, ValueTask> writeToPath)
    {
        ArgumentNullException.ThrowIfNull(writeToPath);
        return Add(new CheckpointArtefact(name, writeToPath));
    }

    /// <summary>An artefact from bytes already in memory (a config file, a small snapshot). The bytes are copied now.</summary>
    public CheckpointDraft AddBytes(string name, ReadOnlySpan<byte> content)
    {
        var copy = content.ToArray();
        return Add(new CheckpointArtefact(name, async (path, ct) =>
        {
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await file.WriteAsync(copy, ct);
        }));
    }

    /// <summary>An artefact copied from an existing file (e.g. the tokenizer's vocab.json); it must exist now.</summary>
    public CheckpointDraft CopyFile(string name, string sourcePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourcePath);
        if (!File.Exists(sourcePath)) throw new ArgumentException($"cannot add '{name}': source file {sourcePath} does not exist", nameof(sourcePath));
        var source = Path.GetFullPath(sourcePath);
        return Add(new CheckpointArtefact(name, async (path, ct) =>
        {
            await using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using var to = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous);
            await from.CopyToAsync(to, ct);
        }));
    }

    /// <summary>
    /// A file that does not change from version to version (the frozen reference or LoRA base weights, the tokenizer
    /// files): stored once in the store's <c>blobs/sha256/</c> by content and hard-linked into every version that lists it,
    /// so a second version with the same bytes writes nothing. It must exist now and must not change while the store
    /// reads it (the store hashes it once per process while its size and modification time stay the same).
    /// Readers see it in the version directory like any other artefact.
    /// </summary>
    public CheckpointDraft ShareFile(string name, string sourcePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourcePath);
        if (!File.Exists(sourcePath)) throw new ArgumentException($"cannot share '{name}': source file {sourcePath} does not exist", nameof(sourcePath));
        var source = Path.GetFullPath(sourcePath);
        return Add(new CheckpointArtefact(name, (_, _) => throw new InvalidOperationException($"'{name}' is shared: the store links its blob"), source));
    }

    /// <summary>Records that the state has absorbed <paramref name="topic"/>[<paramref name="partition"/>] up to, not including, <paramref name="nextOffset"/>.</summary>
    public CheckpointDraft SetOffset(string topic, int partition, long nextOffset)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfNegative(nextOffset);
        if (!_offsets.TryGetValue(topic, out var partitions)) _offsets[topic] = partitions = [];
        partitions[partition] = nextOffset;
        return this;
    }

    /// <summary>Adds every topic/partition/next-offset of a map (e.g. the consumer's absorbed positions).</summary>
    public CheckpointDraft SetOffsets(IEnumerable<KeyValuePair<string, IReadOnlyDictionary<int, long>>> offsets)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        foreach (var (topic, partitions) in offsets)
            foreach (var (partition, next) in partitions)
                SetOffset(topic, partition, next);
        return this;
    }

    /// <summary>A metric to keep in the manifest (shown by <c>checkpoint list</c>). NaN and infinities are kept as such.</summary>
    public CheckpointDraft SetMetric(string name, double value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _metrics[name] = value;
        return this;
    }

    /// <summary>
    /// Marks the version as publish-only (<see cref="CheckpointManifest.PublishOnly"/>): it holds a policy published between
    /// two checkpoints, not a state to resume from. Give it the offsets of the checkpoint it follows.
    /// </summary>
    public CheckpointDraft AsPublishOnly()
    {
        IsPublishOnly = true;
        return this;
    }

    public CheckpointDraft WithConfigHash(string configHash)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configHash);
        ConfigHash = configHash;
        return this;
    }

    internal IReadOnlyList<CheckpointArtefact> Artefacts => _artefacts;

    internal IReadOnlyDictionary<string, IReadOnlyDictionary<int, long>> SnapshotOffsets() =>
        new SortedDictionary<string, IReadOnlyDictionary<int, long>>(
            _offsets.ToDictionary(p => p.Key, p => (IReadOnlyDictionary<int, long>)new SortedDictionary<int, long>(p.Value), StringComparer.Ordinal),
            StringComparer.Ordinal);

    internal IReadOnlyDictionary<string, double> SnapshotMetrics() => new SortedDictionary<string, double>(_metrics, StringComparer.Ordinal);

    private CheckpointDraft Add(CheckpointArtefact artefact)
    {
        if (CheckpointLayout.ArtefactNameProblem(artefact.Name) is { } problem) throw new ArgumentException(problem, "name");
        // Case-insensitive: two names that differ only in case would collide on some volumes.
        if (_artefacts.Any(a => string.Equals(a.Name, artefact.Name, StringComparison.OrdinalIgnoreCase)))
            throw new ArgumentException($"artefact '{artefact.Name}' is already in this checkpoint", "name");
        _artefacts.Add(artefact);
        return this;
    }
}
