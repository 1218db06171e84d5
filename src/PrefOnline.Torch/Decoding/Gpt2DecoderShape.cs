namespace PrefOnline.Torch.Decoding;

/// <summary>
/// The shape of a GPT-2 decoder as the fused <see cref="Gpt2Decoder"/> needs it. (The Learning layer's
/// Gpt2Config carries the same numbers plus training settings; this project cannot see it.)
/// </summary>
public sealed record Gpt2DecoderShape(int Layers, int Heads, int Width, int VocabularySize, int ContextLength, double LayerNormEpsilon = 1e-5)
{
    public int HeadDim => Width / Heads;

    /// <summary>Parameters of the model (LM head tied to the token embedding, so counted once).</summary>
    public long ParameterCount =>
        (long)VocabularySize * Width + (long)ContextLength * Width + 2L * Width
        + Layers * (12L * Width * Width + 13L * Width);

    /// <summary>
    /// Weight bytes one decode step must read at batch 1 (float32): the whole token embedding (it is
    /// also the LM head), every block weight, the final norm, and one row of the position table. The
    /// memory-bandwidth bound on batch-1 tokens/s is copy bandwidth divided by this.
    /// </summary>
    public long WeightBytesPerToken =>
        4 * ((long)VocabularySize * Width + 3L * Width + Layers * (12L * Width * Width + 13L * Width));

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
}
