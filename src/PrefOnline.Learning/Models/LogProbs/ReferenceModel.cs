using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>
/// The frozen reference π_ref that the KL leash measures against: a private copy of the initial
/// policy, with requires_grad off, always in eval mode (no dropout) and always evaluated without
/// gradient (torch.no_grad). It lives where the policy lives (device and dtype). Nothing outside can
/// reach its weights, so it cannot be updated by mistake.
/// </summary>
public sealed class ReferenceModel : IDisposable
{
    private readonly PolicyModel model;

    /// <summary>Copies <paramref name="initialPolicy"/>'s current weights; later updates of the policy do not reach it.</summary>
    public ReferenceModel(PolicyModel initialPolicy)
        : this(() => initialPolicy.Copy())
    {
    }

    /// <param name="create">Makes the private copy this reference owns.</param>
    private ReferenceModel(Func<PolicyModel> create)
    {
        model = create();
        StateDicts.SetRequiresGrad(model, false);
        model.eval();
    }

    /// <summary>A reference read from a checkpoint directory (e.g. the run's initial policy), on
    /// <paramref name="placement"/> (CPU float32 by default).</summary>
    public static ReferenceModel Load(string checkpointDirectory, Tensors.TensorPlacement? placement = null) =>
        new(() => PolicyCheckpoint.LoadModel(checkpointDirectory, placement));

    public DecoderConfig Config => model.Config;

    /// <summary>log π_ref of the batch's completions, never with gradient.</summary>
    public SequenceLogProbs Compute(SequenceBatch batch, LogProbReduction reduction, bool keepDistributions = false)
    {
        using var noGrad = no_grad();
        return SequenceLogProbs.Compute(model, batch, reduction, keepDistributions);
    }

    /// <summary>Next-token logits (B, T, V) without gradient (for diagnostics and tests).</summary>
    public Tensor Forward(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        using var noGrad = no_grad();
        return model.Forward(tokens, attentionMask, positionIds);
    }

    /// <summary>A copy of the reference's weights by Hugging Face name (new tensors owned by the caller's scope).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDictCopy() =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone(), StringComparer.Ordinal);

    public void Dispose() => model.Dispose();
}
