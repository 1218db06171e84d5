using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Worker.Models;

/// <summary>The initial policy from <c>Model:InitialPolicy</c>, a Hugging Face GPT-2 checkpoint directory.</summary>
public sealed class DirectoryPolicySource(string directory) : IInitialPolicySource
{
    public string Description => $"policy checkpoint {directory}";

    public (PolicyModel Policy, ITokenizer Tokenizer) Create(CancellationToken cancellationToken)
    {
        var loaded = PolicyCheckpoint.Load(directory); // the model's ownership passes to the caller: LoadedPolicy is not disposed
        return (loaded.Model, loaded.Tokenizer);
    }
}
