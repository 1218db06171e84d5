using PrefOnline.Torch;
using PrefOnline.Torch.Modules;

namespace PrefOnline.Learning.Models;

/// <summary>
/// GPT-2's "Conv1D": an affine map whose weight is stored [in, out] (the transpose of torch.nn.Linear),
/// exactly as OpenAI's and Hugging Face's checkpoints hold it, so weights load without a transpose.
/// Forward is one fused GEMM: bias + x @ W.
/// </summary>
public sealed class Conv1D : Module
{
    /// <param name="initStd">Standard deviation of the N(0, σ²) weight init (GPT-2: 0.02, residual projections scaled down).</param>
    /// <param name="generator">Draws the init; pass a seeded one for a reproducible model, or null to leave the weight uninitialised (about to be loaded).</param>
    public Conv1D(long inFeatures, long outFeatures, double initStd, Generator? generator)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var weight = Tensor.Empty([inFeatures, outFeatures]);
        if (generator is not null) weight.NormalInPlace(0, initStd, generator);
        Weight = RegisterParameter("weight", weight);
        Bias = RegisterParameter("bias", Tensor.Zeros([outFeatures]));
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>[in, out].</summary>
    public Tensor Weight { get; }

    /// <summary>[out].</summary>
    public Tensor Bias { get; }

    /// <summary>(..., in) → (..., out).</summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = DisposeScope.Enter();
        var shape = x.Shape;
        var flat = x.Reshape(-1, InFeatures);        // (N, in)
        var y = Bias.AddMm(flat, Weight);            // (N, out)
        shape[^1] = OutFeatures;
        return y.View(shape).MoveToOuterScope();     // (..., out)
    }
}
