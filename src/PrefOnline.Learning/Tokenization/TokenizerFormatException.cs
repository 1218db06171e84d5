namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// A tokenizer file (vocab.json, merges.txt, tokenizer_config.json, ...) that cannot be used, or a
/// checkpoint directory whose tokenizer files do not fit together. The message is one line naming the
/// file, the 1-based line when there is one, and the first problem found.
/// </summary>
public sealed class TokenizerFormatException(string path, int? line, string problem)
    : IOException(line is { } l ? $"{path}:{l}: {problem}" : $"{path}: {problem}")
{
    public string FilePath { get; } = path;

    /// <summary>1-based line of the problem, when the file has one.</summary>
    public int? Line { get; } = line;

    public string Problem { get; } = problem;
}
