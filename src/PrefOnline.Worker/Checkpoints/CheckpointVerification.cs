namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The verdict on one version directory. Valid means: manifest.json parses and is consistent (format,
/// version = directory, parent older), every listed file exists with its size (and, at
/// <see cref="CheckpointVerificationLevel.Full"/>, its SHA-256), and nothing else is in the directory.
/// <see cref="Manifest"/> is set whenever the manifest matched its checksum and parsed, even if files are
/// bad, so a listing can still show when it was created and what its parent was.
/// </summary>
public sealed record CheckpointVerification(
    long Version,
    CheckpointVerificationLevel Level,
    CheckpointManifest? Manifest,
    IReadOnlyList<string> Problems)
{
    public bool IsValid => Problems.Count == 0;

    /// <summary>All problems on one line, for logs, metrics labels and the CLI.</summary>
    public string Reason => IsValid ? "valid" : string.Join("; ", Problems);
}
