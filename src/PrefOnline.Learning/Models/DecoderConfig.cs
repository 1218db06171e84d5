using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// What the family-independent code (sampler, KV cache, log-probs, reward head, learner) needs to know
/// about a decoder-only language model's shape. Each family is one sealed record deriving from this —
/// <see cref="Gpt2Config"/> and <see cref="LlamaConfig"/> (Llama, Qwen2, Qwen3, SmolLM) — whose own fields
/// map one to one onto that family's Hugging Face config.json. The record also builds its family's
/// modules, so nothing outside the model files asks which family it holds.
/// </summary>
public abstract record DecoderConfig
{
    /// <summary>Hugging Face's <c>model_type</c>: gpt2, llama, qwen2 or qwen3.</summary>
    public abstract string ModelType { get; }

    /// <summary>Token ids the embedding holds (≥ the tokenizer's vocabulary).</summary>
    public abstract int VocabularySize { get; init; }

    /// <summary>Longest sequence (prompt + completion) the model is run on.</summary>
    public abstract int ContextLength { get; init; }

    public abstract int Layers { get; init; }

    /// <summary>Residual stream width (hidden size): what a reward head reads.</summary>
    public abstract int Width { get; init; }

    /// <summary>Key/value heads per layer: what a KV cache holds (fewer than the query heads with
    /// grouped-query attention).</summary>
    public abstract int KeyValueHeads { get; }

    /// <summary>Width of one attention head.</summary>
    public abstract int HeadDim { get; }

    /// <summary>Every problem at once (in the config.json key names), or an empty list.</summary>
    public abstract IReadOnlyList<string> Problems();

    /// <summary>The name Hugging Face gives the trunk inside its *ForCausalLM / *ForSequenceClassification
    /// modules (<c>transformer</c> for GPT-2, <c>model</c> for the Llama family), so a reward model's state
    /// dict reads like theirs.</summary>
    internal abstract string TrunkModuleName { get; }

    /// <summary>This family's policy (trunk + LM head). <paramref name="init"/> draws the family's
    /// initialisation; null leaves weights uninitialised because a checkpoint is about to be copied in.</summary>
    internal abstract PolicyModel CreatePolicy(Generator? init, ulong? dropoutSeed = null);

    /// <summary>This family's trunk alone (what a reward model puts its head on).</summary>
    internal abstract DecoderTrunk CreateTrunk(Generator? init);
}
