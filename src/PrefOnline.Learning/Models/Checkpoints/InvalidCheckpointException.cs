namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// A checkpoint (directory or weights file) that cannot be loaded. The message is one line naming
/// the path and every problem found (missing file, bad JSON, config problems, tensor name and shape
/// mismatches), so a CLI can print it as is.
/// </summary>
public sealed class InvalidCheckpointException : IOException
{
    public InvalidCheckpointException(string path, IReadOnlyList<string> problems)
        : base($"{path}: cannot load checkpoint: {string.Join("; ", problems)}")
    {
        Path = path;
        Problems = problems;
    }

    public InvalidCheckpointException(string path, string problem) : this(path, [problem])
    {
    }

    public string Path { get; }

    public IReadOnlyList<string> Problems { get; }
}
