using PrefOnline.Torch.Decoding;

namespace PrefOnline.Torch.Tests.Decoding;

/// <summary>Random GPT-2 weights with the Hugging Face names and shapes, scaled so that logits are
/// spread out (greedy choices are then far from ties and robust to float rounding).</summary>
internal sealed class RandomGpt2 : IDisposable
{
    public RandomGpt2(Gpt2DecoderShape shape, ulong seed, double scale = 1.0)
    {
        Shape = shape;
        using var generator = new Generator(seed);
        int c = shape.Width, v = shape.VocabularySize, t = shape.ContextLength;
        Add("wte.weight", [v, c], 0.5 * scale, 0, generator);
        Add("wpe.weight", [t, c], 0.2 * scale, 0, generator);
        for (var i = 0; i < shape.Layers; i++)
        {
            var p = $"h.{i}.";
            Add(p + "ln_1.weight", [c], 0.1, 1, generator);
            Add(p + "ln_1.bias", [c], 0.05, 0, generator);
            Add(p + "attn.c_attn.weight", [c, 3 * c], scale / Math.Sqrt(c), 0, generator);
            Add(p + "attn.c_attn.bias", [3 * c], 0.05, 0, generator);
            Add(p + "attn.c_proj.weight", [c, c], scale / Math.Sqrt(c), 0, generator);
            Add(p + "attn.c_proj.bias", [c], 0.05, 0, generator);
            Add(p + "ln_2.weight", [c], 0.1, 1, generator);
            Add(p + "ln_2.bias", [c], 0.05, 0, generator);
            Add(p + "mlp.c_fc.weight", [c, 4 * c], scale / Math.Sqrt(c), 0, generator);
            Add(p + "mlp.c_fc.bias", [4 * c], 0.05, 0, generator);
            Add(p + "mlp.c_proj.weight", [4 * c, c], scale / Math.Sqrt(4 * c), 0, generator);
            Add(p + "mlp.c_proj.bias", [c], 0.05, 0, generator);
        }
        Add("ln_f.weight", [c], 0.1, 1, generator);
        Add("ln_f.bias", [c], 0.05, 0, generator);
    }

    public Gpt2DecoderShape Shape { get; }

    public Dictionary<string, Tensor> Weights { get; } = new(StringComparer.Ordinal);

    private void Add(string name, long[] shape, double std, double mean, Generator generator)
    {
        var t = Tensor.Empty(shape).DetachFromScope();
        t.NormalInPlace(mean, std, generator);
        Weights[name] = t;
    }

    public void Dispose()
    {
        foreach (var t in Weights.Values) t.Dispose();
    }
}
