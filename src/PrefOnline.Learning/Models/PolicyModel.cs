using PrefOnline.Torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// The policy: GPT-2 (Hugging Face's GPT2LMHeadModel) — the <see cref="Gpt2Model"/> trunk plus a
/// language-model head whose weight IS the token embedding <c>wte</c> (tied, as in GPT-2), so the
/// state dict holds exactly the trunk's Hugging Face names and nothing else.
/// </summary>
public sealed class PolicyModel : Gpt2Model
{
    /// <inheritdoc cref="Gpt2Model(Gpt2Config, Generator?, Generator?)"/>
    public PolicyModel(Gpt2Config config, Generator? init, Generator? dropoutGenerator = null)
        : base(config, init, dropoutGenerator)
    {
    }

    /// <summary>A freshly initialised policy, reproducible from <paramref name="seed"/> alone.</summary>
    public static PolicyModel Create(Gpt2Config config, ulong seed)
    {
        using var init = new Generator(seed);
        return new PolicyModel(config, init);
    }

    /// <summary>
    /// Next-token logits (B, T, V) of int64 <paramref name="tokens"/> (B, T): position t scores the
    /// token at t + 1. Arguments as <see cref="Gpt2Model.Hidden"/>.
    /// </summary>
    public Tensor Forward(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        using var scope = DisposeScope.Enter();
        var hidden = Hidden(tokens, attentionMask, positionIds);          // (B, T, C)
        return Logits(hidden).MoveToOuterScope();                          // (B, T, V)
    }

    /// <summary>The tied LM head on hidden states (..., C) → (..., V): h @ wteᵀ, no bias.</summary>
    public Tensor Logits(Tensor hidden) => Functional.Linear(hidden, Wte.Weight);

    /// <summary>An independent copy with the same config and weights (in eval/train mode like this
    /// one); its dropout generator is seeded afresh from <paramref name="dropoutSeed"/>.</summary>
    public PolicyModel Copy(ulong dropoutSeed = 0)
    {
        var copy = new PolicyModel(Config, init: null);
        try
        {
            copy.DropoutGenerator.SetSeed(dropoutSeed);
            copy.LoadStateDict(StateDict());
            copy.Train(Training);
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }
}
