using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>
/// The frozen reference π_ref that the KL leash measures against: a private copy of the initial
/// policy, with requires_grad off, always in eval mode (no dropout) and always evaluated without
/// gradient (torch.no_grad). It lives where the policy lives (device and dtype). Nothing outside can
/// reach its weights, so it cannot be updated by mistake. With LoRA (<see cref="BaseOf"/>) it is instead
/// the policy's own frozen base weights with the adapters switched off: no copy at all.
/// </summary>
public sealed class ReferenceModel : IDisposable
{
    private readonly PolicyModel model;

    /// <summary>False for <see cref="BaseOf"/>: the model is the policy itself, run with its adapters off.</summary>
    private readonly bool owned;

    /// <summary>Copies <paramref name="initialPolicy"/>'s current weights; later updates of the policy do not reach it.</summary>
    public ReferenceModel(PolicyModel initialPolicy)
        : this(() => initialPolicy.Copy())
    {
    }

    /// <param name="create">Makes the private copy this reference owns.</param>
    private ReferenceModel(Func<PolicyModel> create)
    {
        model = create();
        owned = true;
        StateDicts.SetRequiresGrad(model, false);
        model.eval();
    }

    /// <summary>A reference read from a checkpoint directory (e.g. the run's initial policy), on
    /// <paramref name="placement"/> (CPU float32 by default).</summary>
    public static ReferenceModel Load(string checkpointDirectory, Tensors.TensorPlacement? placement = null) =>
        new(() => PolicyCheckpoint.LoadModel(checkpointDirectory, placement));

    /// <summary>
    /// The reference of a LoRA-adapted policy: the policy's own frozen base weights with its adapters
    /// switched off (and in eval mode) for each computation — no copy of the model. Not owned: disposing
    /// it leaves the policy alone.
    /// </summary>
    public static ReferenceModel BaseOf(PolicyModel adaptedPolicy)
    {
        ArgumentNullException.ThrowIfNull(adaptedPolicy);
        if (adaptedPolicy.Adapters is null) throw new ArgumentException("the policy has no adapters: its base is not frozen, copy it instead (new ReferenceModel(policy))", nameof(adaptedPolicy));
        return new ReferenceModel(adaptedPolicy, owned: false);
    }

    private ReferenceModel(PolicyModel model, bool owned)
    {
        this.model = model;
        this.owned = owned;
    }

    /// <summary>True when this reference is the policy's base with the adapters off (<see cref="BaseOf"/>).</summary>
    public bool SharesPolicyWeights => !owned;

    public DecoderConfig Config => model.Config;

    /// <summary>log π_ref of the batch's completions, never with gradient.</summary>
    public SequenceLogProbs Compute(SequenceBatch batch, LogProbReduction reduction, bool keepDistributions = false)
    {
        using var noGrad = no_grad();
        using var baseOnly = BaseModel();
        return SequenceLogProbs.Compute(model, batch, reduction, keepDistributions);
    }

    /// <summary>Next-token logits (B, T, V) without gradient (for diagnostics and tests).</summary>
    public Tensor Forward(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        using var noGrad = no_grad();
        using var baseOnly = BaseModel();
        return model.Forward(tokens, attentionMask, positionIds);
    }

    /// <summary>For a shared policy: adapters off and eval mode until disposed (then the caller's mode again).</summary>
    private BaseModelScope BaseModel() => owned ? default : new BaseModelScope(model);

    private readonly struct BaseModelScope : IDisposable
    {
        private readonly PolicyModel? policy;
        private readonly IDisposable? adaptersOff;
        private readonly bool wasTraining;

        public BaseModelScope(PolicyModel policy)
        {
            if (policy.Adapters is null)
                throw new InvalidOperationException("the policy's adapters were removed (merged or disposed): this reference no longer has a frozen base to run");
            this.policy = policy;
            wasTraining = policy.training;
            adaptersOff = policy.WithoutAdapters();
            policy.eval();
        }

        public void Dispose()
        {
            adaptersOff?.Dispose();
            policy?.train(wasTraining);
        }
    }

    /// <summary>A copy of the reference's weights by Hugging Face name (new tensors owned by the caller's scope).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDictCopy() =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone(), StringComparer.Ordinal);

    public void Dispose()
    {
        if (owned) model.Dispose();
    }
}
