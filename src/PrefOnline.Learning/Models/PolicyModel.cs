using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// The policy: a causal language model of any supported family — a <see cref="DecoderTrunk"/> plus a
/// language-model head. <see cref="Gpt2Model"/> (head tied to its token embedding, so trunk and policy
/// are one module) and <see cref="LlamaForCausalLM"/> (Llama, Qwen2, Qwen3, SmolLM: trunk <c>model</c>,
/// tied or untied <c>lm_head</c>). Its state dict holds the family's Hugging Face names, so checkpoints
/// load by a dictionary walk. The sampler, the log-prob helpers, the learner, the reference and the
/// reward model see only this type.
/// </summary>
public abstract class PolicyModel : DecoderTrunk
{
    protected PolicyModel(string name, ulong dropoutSeed) : base(name, dropoutSeed)
    {
    }

    /// <summary>A freshly initialised policy of <paramref name="config"/>'s family, reproducible from
    /// <paramref name="seed"/> alone, on <paramref name="placement"/> (CPU float32 by default).</summary>
    public static PolicyModel Create(DecoderConfig config, ulong seed, TensorPlacement? placement = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var init = new Generator(seed);
        var model = config.CreatePolicy(init);
        try
        {
            model.Place(placement ?? TensorPlacement.Cpu);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The hidden-state network without the head (this module for GPT-2, <c>model</c> for the
    /// Llama family): what a reward model's trunk is copied from.</summary>
    public abstract DecoderTrunk Trunk { get; }

    /// <summary>The LM head on hidden states (..., C) → logits (..., V).</summary>
    public abstract Tensor Logits(Tensor hidden);

    /// <summary>
    /// Next-token logits (B, T, V) of int64 <paramref name="tokens"/> (B, T): position t scores the
    /// token at t + 1. Arguments as <see cref="DecoderTrunk.Hidden(Tensor, Tensor?, Tensor?)"/>.
    /// </summary>
    public Tensor Forward(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        using var scope = NewDisposeScope();
        var hidden = Hidden(tokens, attentionMask, positionIds);          // (B, T, C)
        return Logits(hidden).MoveToOuterDisposeScope();                   // (B, T, V)
    }

    /// <summary>The LoRA adapters attached to this policy by <see cref="LoraAdapters.Attach"/> (null: none).
    /// The policy owns them: placing it moves them, disposing it disposes them.</summary>
    public LoraAdapters? Adapters { get; internal set; }

    /// <summary>Runs the base model alone until the scope is disposed (the KL reference: the same base
    /// weights with the adapters off). Without adapters the scope does nothing.</summary>
    public IDisposable WithoutAdapters() => Adapters is { } adapters ? adapters.Disable() : NoAdapterScope.Instance;

    internal override void PlacedAt(TensorPlacement placement)
    {
        base.PlacedAt(placement);
        Adapters?.PlacedAt(placement);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Adapters is { } adapters)
        {
            Adapters = null;   // detached first, so disposing them does not unfreeze a dying model
            adapters.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class NoAdapterScope : IDisposable
    {
        public static readonly NoAdapterScope Instance = new();

        public void Dispose()
        {
        }
    }

    /// <summary>An independent copy with the same config, placement and base weights (in eval/train mode
    /// like this one; attached adapters are not copied); its dropout generator is seeded afresh from <paramref name="dropoutSeed"/>.</summary>
    public PolicyModel Copy(ulong dropoutSeed = 0)
    {
        var copy = Config.CreatePolicy(init: null, dropoutSeed);
        try
        {
            copy.Place(Placement);
            StateDicts.Load(copy, state_dict());
            copy.train(training);
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }
}
