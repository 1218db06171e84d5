using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>A policy read from a checkpoint directory, with the tokenizer found beside it. Disposing
/// it frees the model.</summary>
public sealed class LoadedPolicy(string directory, PolicyModel model, ITokenizer tokenizer) : IDisposable
{
    /// <summary>Full path of the directory it was read from.</summary>
    public string Directory { get; } = directory;

    public PolicyModel Model { get; } = model;

    public ITokenizer Tokenizer { get; } = tokenizer;

    public DecoderConfig Config => Model.Config;

    public void Dispose() => Model.Dispose();
}
