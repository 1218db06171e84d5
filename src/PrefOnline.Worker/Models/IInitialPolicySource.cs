using PrefOnline.Learning.Models;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Worker.Models;

/// <summary>Where the first policy comes from when the checkpoint store is empty. Called on the tensor thread; the caller owns the model.</summary>
public interface IInitialPolicySource
{
    /// <summary>One line for the log: what this source will produce.</summary>
    string Description { get; }

    (PolicyModel Policy, ITokenizer Tokenizer) Create(CancellationToken cancellationToken);
}
