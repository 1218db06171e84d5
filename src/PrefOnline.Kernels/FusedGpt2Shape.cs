namespace PrefOnline.Kernels;

/// <summary>
/// The architecture numbers of a GPT-2 model as the fused decoder needs them (the model's config
/// carries the same numbers plus training settings), and the weights it reads: Hugging Face names,
/// float32, the Conv1D layout [in, out] for linear layers, LM head tied to <c>wte</c>.
/// </summary>
public sealed record FusedGpt2Shape(int Layers, int Heads, int Width, int VocabularySize, int ContextLength, double LayerNormEpsilon = 1e-5)
{
    public int HeadDim => Width / Heads;

    /// <summary>Number of weight tensors: wte, wpe, 12 per layer, ln_f weight and bias.</summary>
    public int WeightCount => 4 + 12 * Layers;

    /// <summary>
    /// Weight bytes one decode step must read at batch 1 (float32): the whole token embedding (it is
    /// also the LM head), every block weight, the final norm, and one row of the position table. The
    /// memory-bandwidth bound on batch-1 tokens/s is the copy bandwidth divided by this.
    /// </summary>
    public long WeightBytesPerToken =>
        4 * ((long)VocabularySize * Width + 3L * Width + Layers * (12L * Width * Width + 13L * Width));

    /// <summary>The weight names in the decoder's native order.</summary>
    public IReadOnlyList<string> WeightNames()
    {
        var names = new List<string>(WeightCount) { "wte.weight", "wpe.weight" };
        for (var i = 0; i < Layers; i++)
        {
            foreach (var part in LayerParts) names.Add($"h.{i}.{part}");
        }
        names.Add("ln_f.weight");
        names.Add("ln_f.bias");
        return names;
    }

    /// <summary>The shape the decoder expects for a weight name, e.g. h.0.mlp.c_fc.weight → [C, 4C].</summary>
    public long[] WeightShape(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        long c = Width;
        return name switch
        {
            "wte.weight" => [VocabularySize, c],
            "wpe.weight" => [ContextLength, c],
            _ when name.EndsWith("attn.c_attn.weight", StringComparison.Ordinal) => [c, 3 * c],
            _ when name.EndsWith("attn.c_attn.bias", StringComparison.Ordinal) => [3 * c],
            _ when name.EndsWith("attn.c_proj.weight", StringComparison.Ordinal) => [c, c],
            _ when name.EndsWith("mlp.c_fc.weight", StringComparison.Ordinal) => [c, 4 * c],
            _ when name.EndsWith("mlp.c_fc.bias", StringComparison.Ordinal) => [4 * c],
            _ when name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal) => [4 * c, c],
            _ when name.StartsWith("ln_f.", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal) || name.EndsWith(".bias", StringComparison.Ordinal) => [c],
            _ => throw new ArgumentException($"'{name}' is not a GPT-2 weight name", nameof(name)),
        };
    }

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Layers < 1) problems.Add($"layers {Layers} must be at least 1");
        if (Heads < 1) problems.Add($"heads {Heads} must be at least 1");
        if (Width < 1 || (Heads >= 1 && Width % Heads != 0)) problems.Add($"width {Width} must be a positive multiple of heads {Heads}");
        if (VocabularySize < 2) problems.Add($"vocabulary size {VocabularySize} must be at least 2");
        if (ContextLength < 2) problems.Add($"context length {ContextLength} must be at least 2");
        if (!(LayerNormEpsilon > 0)) problems.Add($"layer norm epsilon {LayerNormEpsilon} must be positive");
        return problems;
    }

    private static readonly string[] LayerParts =
    [
        "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
        "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
    ];
}
