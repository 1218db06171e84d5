using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// Per-token log-probs of the B completions, padded to T tokens. Row b's masked sum must equal
/// <see cref="ObjectiveInputs.PolicyLogProbs"/>[b] when that is a "sum" reduction (the caller builds
/// both from the same helper).
/// </summary>
public sealed class TokenLogProbs
{
    /// <summary>(B, T) log π_θ(y_t | x, y_&lt;t) with autograd history.</summary>
    public required Tensor Policy { get; init; }

    /// <summary>(B, T) under the reference, no gradient (the KL penalty).</summary>
    public Tensor? Reference { get; init; }

    /// <summary>(B, T) under the behaviour policy, no gradient (PPO's ratio).</summary>
    public Tensor? Behaviour { get; init; }

    /// <summary>(B, T) 1 for completion tokens, 0 for prompt and padding; float or bool.</summary>
    public required Tensor Mask { get; init; }
}
