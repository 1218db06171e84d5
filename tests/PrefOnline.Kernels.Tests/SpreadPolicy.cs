using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Kernels.Tests;

/// <summary>
/// The source of truth the fused decoder is checked against: the product's own GPT-2 (the
/// <see cref="PolicyModel"/> the learner trains, TorchSharp), float32 on the CPU, with random weights
/// spread as <see cref="SpreadWeights"/> says. The decoder reads its parameters in place through the
/// product's <see cref="PolicyWeightSource"/> (their storage data pointers: no copy, no mirror).
/// </summary>
internal sealed class SpreadPolicy : IDisposable
{
    private SpreadPolicy(FusedGpt2Shape shape, ulong seed)
    {
        Shape = shape;
        var config = new Gpt2Config
        {
            Layers = shape.Layers, Heads = shape.Heads, Width = shape.Width, VocabularySize = shape.VocabularySize,
            ContextLength = shape.ContextLength, LayerNormEpsilon = shape.LayerNormEpsilon,
        };
        Model = PolicyModel.Create(config, seed);
        Model.eval();
        using (no_grad())
        using (var generator = new Generator(seed))
        {
            foreach (var (name, parameter) in Model.named_parameters())
            {
                var (mean, std) = SpreadWeights.Of(name, shape);
                parameter.normal_(mean, std, generator);
            }
        }
        Weights = new PolicyWeightSource(Model);
    }

    public FusedGpt2Shape Shape { get; }

    public PolicyModel Model { get; }

    /// <summary>The model's weights as the decoder reads them (in place: what the model computes with).</summary>
    public IGpt2WeightSource Weights { get; }

    /// <summary>A model of this shape with random weights from <paramref name="seed"/>.</summary>
    public static SpreadPolicy Create(FusedGpt2Shape shape, ulong seed) => new(shape, seed);

    /// <summary>The model's next-token logits for one sequence alone (batch 1, no padding): [T, V]
    /// row-major, position t scoring the token after sequence[0..t].</summary>
    public float[] Logits(int[] sequence)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        var tokens = tensor(sequence.Select(t => (long)t).ToArray(), [1, sequence.Length]);
        return Model.Forward(tokens).data<float>().ToArray();  // (1, T, V)
    }

    /// <summary>What an optimizer step does to the model: every parameter changed in place
    /// (p += 0.05·N(0, 1), seeded), the tensors themselves kept.</summary>
    public void UpdateInPlace(ulong seed)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var generator = new Generator(seed);
        foreach (var (_, parameter) in Model.named_parameters()) parameter.add_(randn(parameter.shape, generator: generator), alpha: 0.05);
    }

    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Random weights scaled so that logits are spread out: GPT-2's own init (N(0, 0.02²)) gives almost
/// uniform logits, where an argmax is decided by float rounding and a greedy comparison would test
/// the rounding, not the model. These put the top logits units apart, as a trained model does.
/// </summary>
internal static class SpreadWeights
{
    /// <summary>(mean, standard deviation) of the normal a weight is drawn from.</summary>
    public static (double Mean, double Std) Of(string name, FusedGpt2Shape shape)
    {
        double c = shape.Width;
        if (name == "wte.weight") return (0, 0.5);
        if (name == "wpe.weight") return (0, 0.2);
        if (name.EndsWith("ln_1.weight", StringComparison.Ordinal) || name.EndsWith("ln_2.weight", StringComparison.Ordinal) || name == "ln_f.weight")
            return (1, 0.1);
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return (0, 0.05);
        if (name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal)) return (0, 1 / Math.Sqrt(4 * c));
        return (0, 1 / Math.Sqrt(c)); // c_attn, attn.c_proj, c_fc
    }
}
