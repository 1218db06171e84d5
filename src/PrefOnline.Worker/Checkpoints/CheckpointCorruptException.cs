namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// A version failed verification (missing, tampered, truncated, unreadable manifest...). Corruption is
/// never retried: reading it again gives the same bytes. An <see cref="IOException"/> like the
/// codebase's other bad-file errors (SafeTensorsFormatException), but <see cref="CheckpointRetry.IsTransient"/>
/// excludes it, and the store raises it outside its retry pipeline.
/// </summary>
public sealed class CheckpointCorruptException(string root, long version, IReadOnlyList<string> problems)
    : IOException($"checkpoint {CheckpointVersion.DirectoryName(version)} in {root} is invalid: {string.Join("; ", problems)}")
{
    public string Root { get; } = root;
    public long Version { get; } = version;
    public IReadOnlyList<string> Problems { get; } = problems;
}
