using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace PrefOnline.Learning.Models;

/// <summary>
/// The policy: GPT-2 (Hugging Face's GPT2LMHeadModel) — the <see cref="Gpt2Model"/> trunk plus a
/// language-model head whose weight IS the token embedding <c>wte</c> (tied, as in GPT-2), so the
/// state dict holds exactly the trunk's Hugging Face names and nothing else.
/// </summary>
public sealed class PolicyModel : Gpt2Model
{
    /// <inheritdoc cref="Gpt2Model(Gpt2Config, Generator?, ulong?)"/>
    public PolicyModel(Gpt2Config config, Generator? init, ulong? dropoutSeed = null)
        : base(config, init, dropoutSeed)
    {
    }

    /// <summary>A freshly initialised policy, reproducible from <paramref name="seed"/> alone, on
    /// <paramref name="placement"/> (CPU float32 by default).</summary>
    public static PolicyModel Create(Gpt2Config config, ulong seed, TensorPlacement? placement = null)
    {
        using var init = new Generator(seed);
        var model = new PolicyModel(config, init);
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

    /// <summary>
    /// Next-token logits (B, T, V) of int64 <paramref name="tokens"/> (B, T): position t scores the
    /// token at t + 1. Arguments as <see cref="Gpt2Model.Hidden(Tensor, Tensor?, Tensor?)"/>.
    /// </summary>
    public Tensor Forward(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        using var scope = NewDisposeScope();
        var hidden = Hidden(tokens, attentionMask, positionIds);          // (B, T, C)
        return Logits(hidden).MoveToOuterDisposeScope();                   // (B, T, V)
    }

    /// <summary>The tied LM head on hidden states (..., C) → (..., V): h @ wteᵀ, no bias.</summary>
    public Tensor Logits(Tensor hidden) => F.linear(hidden, TokenEmbedding);

    /// <summary>An independent copy with the same config, placement and weights (in eval/train mode
    /// like this one); its dropout generator is seeded afresh from <paramref name="dropoutSeed"/>.</summary>
    public PolicyModel Copy(ulong dropoutSeed = 0)
    {
        var copy = new PolicyModel(Config, init: null, dropoutSeed);
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
