using PrefOnline.Learning.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>A policy with random GPT-2 weights, scaled so that logits are spread out. <see cref="Weights"/>
/// are the model's own tensors under the Hugging Face names (its state dict): changing one in place
/// changes the model.</summary>
internal sealed class RandomPolicyWeights : IDisposable
{
    public RandomPolicyWeights(Gpt2Config config, ulong seed)
    {
        Model = new Gpt2Model(config, init: null);
        using var generator = new Generator(seed);
        using var noGrad = no_grad();
        int c = config.Width;
        foreach (var (name, t) in Model.state_dict())
        {
            var (mean, std) = name switch
            {
                "wte.weight" => (0.0, 0.5),
                "wpe.weight" => (0.0, 0.2),
                _ when name.EndsWith("c_attn.weight", StringComparison.Ordinal) => (0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("attn.c_proj.weight", StringComparison.Ordinal) => (0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("c_fc.weight", StringComparison.Ordinal) => (0.0, 1 / Math.Sqrt(c)),
                _ when name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal) => (0.0, 1 / Math.Sqrt(4 * c)),
                _ when name.EndsWith(".weight", StringComparison.Ordinal) => (1.0, 0.1), // layer norm gains
                _ => (0.0, 0.05),
            };
            t.normal_(mean, std, generator);
        }
    }

    public PolicyModel Model { get; }

    public Dictionary<string, Tensor> Weights => Model.state_dict();

    public void Dispose() => Model.Dispose();
}
