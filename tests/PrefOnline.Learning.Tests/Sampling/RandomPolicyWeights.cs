using PrefOnline.Learning.Models;
using PrefOnline.Torch;
using PrefOnline.Torch.Decoding;

namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>Random GPT-2 weights under the Hugging Face names (what PolicyModel.StateDict() holds),
/// scaled so that logits are spread out.</summary>
internal sealed class RandomPolicyWeights : IDisposable
{
    public RandomPolicyWeights(Gpt2Config config, ulong seed)
    {
        using var generator = new Generator(seed);
        int c = config.Width;
        foreach (var name in Gpt2Decoder.WeightNames(config.Layers))
        {
            var (shape, mean, std) = name switch
            {
                "wte.weight" => (new long[] { config.VocabularySize, c }, 0.0, 0.5),
                "wpe.weight" => ([config.ContextLength, c], 0.0, 0.2),
                _ when name.EndsWith("c_attn.weight", StringComparison.Ordinal) => ([c, 3 * c], 0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("c_attn.bias", StringComparison.Ordinal) => ([3 * c], 0.0, 0.05),
                _ when name.EndsWith("attn.c_proj.weight", StringComparison.Ordinal) => ([c, c], 0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("c_fc.weight", StringComparison.Ordinal) => ([c, 4 * c], 0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("c_fc.bias", StringComparison.Ordinal) => ([4 * c], 0.0, 0.05),
                _ when name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal) => ([4 * c, c], 0.0, 1 / Math.Sqrt(4 * c)),
                _ when name.EndsWith(".weight", StringComparison.Ordinal) => ([c], 1.0, 0.1), // layer norm gains
                _ => ([c], 0.0, 0.05),
            };
            var t = Tensor.Empty(shape).DetachFromScope();
            t.NormalInPlace(mean, std, generator);
            Weights[name] = t;
        }
    }

    public Dictionary<string, Tensor> Weights { get; } = new(StringComparer.Ordinal);

    public void Dispose()
    {
        foreach (var t in Weights.Values) t.Dispose();
    }
}
