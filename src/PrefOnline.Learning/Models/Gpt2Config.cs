using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// The shape of a GPT-2 decoder, as Hugging Face's GPT2Config names it in config.json
/// (vocab_size, n_positions, n_layer, n_head, n_embd, resid/embd/attn_pdrop, layer_norm_epsilon).
/// Saved with every checkpoint so a model can always be rebuilt from its files.
/// </summary>
public sealed record Gpt2Config : DecoderConfig
{
    public override string ModelType => "gpt2";

    /// <summary>Token ids the embedding holds (≥ the tokenizer's vocabulary).</summary>
    public override int VocabularySize { get; init; } = 258;

    /// <summary>Longest sequence (prompt + completion) the learned position table covers.</summary>
    public override int ContextLength { get; init; } = 256;

    public override int Layers { get; init; } = 4;

    public int Heads { get; init; } = 4;

    /// <summary>Residual stream width (n_embd); must divide by <see cref="Heads"/>.</summary>
    public override int Width { get; init; } = 128;

    /// <summary>One dropout rate for embeddings, attention and residuals (GPT-2 uses 0.1 in pre-training;
    /// fine-tuning on-policy usually runs at 0 so log-probs of the behaviour policy are exact).</summary>
    public double Dropout { get; init; }

    public double LayerNormEpsilon { get; init; } = 1e-5;

    public override int HeadDim => Width / Heads;

    /// <summary>GPT-2 has one key/value head per query head.</summary>
    public override int KeyValueHeads => Heads;

    internal override string TrunkModuleName => "transformer";

    internal override PolicyModel CreatePolicy(Generator? init, ulong? dropoutSeed = null) => new Gpt2Model(this, init, dropoutSeed);

    internal override DecoderTrunk CreateTrunk(Generator? init) => new Gpt2Model(this, init);

    /// <summary>4 layers, 4 heads, width 128, context 256: ≈0.86M parameters with the byte vocabulary. Tests and the demo.</summary>
    public static Gpt2Config Tiny(int vocabularySize = 258) => new() { VocabularySize = vocabularySize, Layers = 4, Heads = 4, Width = 128, ContextLength = 256 };

    /// <summary>6 layers, 6 heads, width 384, context 256: ≈10.8M parameters with the byte vocabulary.</summary>
    public static Gpt2Config Small(int vocabularySize = 258) => new() { VocabularySize = vocabularySize, Layers = 6, Heads = 6, Width = 384, ContextLength = 256 };

    /// <summary>The original 124M GPT-2 shape (vocabulary 50257, context 1024).</summary>
    public static Gpt2Config Gpt2() => new() { VocabularySize = 50257, Layers = 12, Heads = 12, Width = 768, ContextLength = 1024 };

    public static Gpt2Config Preset(string name) => name switch
    {
        "tiny" => Tiny(),
        "small" => Small(),
        "gpt2" => Gpt2(),
        _ => throw new ArgumentException($"unknown preset '{name}' (known: tiny, small, gpt2)"),
    };

    /// <summary>Every problem at once, or an empty list.</summary>
    public override IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (VocabularySize < 2) problems.Add($"vocab_size {VocabularySize} must be at least 2");
        if (ContextLength < 2) problems.Add($"n_positions {ContextLength} must be at least 2");
        if (Layers < 1) problems.Add($"n_layer {Layers} must be at least 1");
        if (Heads < 1) problems.Add($"n_head {Heads} must be at least 1");
        if (Width < 1 || (Heads >= 1 && Width % Heads != 0)) problems.Add($"n_embd {Width} must be a positive multiple of n_head {Heads}");
        if (!(Dropout >= 0 && Dropout < 1)) problems.Add($"dropout {Dropout} must be in [0, 1)");
        if (!(LayerNormEpsilon > 0)) problems.Add($"layer_norm_epsilon {LayerNormEpsilon} must be positive");
        return problems;
    }

    public Gpt2Config Validated()
    {
        var problems = Problems();
        return problems.Count == 0 ? this : throw new ArgumentException($"invalid GPT-2 config: {string.Join("; ", problems)}");
    }
}
