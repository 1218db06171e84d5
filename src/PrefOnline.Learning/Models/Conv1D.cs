using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// GPT-2's "Conv1D": an affine map whose weight is stored [in, out] (the transpose of torch.nn.Linear),
/// exactly as OpenAI's and Hugging Face's checkpoints hold it, so weights load without a transpose.
/// Forward is one fused GEMM: bias + x @ W (addmm, whose TorchSharp export turns a shape error into an
/// exception; matmul's would abort the process).
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    // Field names are the checkpoint's keys (RegisterComponents names parameters after their fields).
    private Parameter weight;
    private Parameter bias;

    /// <param name="initStd">Standard deviation of the N(0, σ²) weight init (GPT-2: 0.02, residual projections scaled down).</param>
    /// <param name="generator">Draws the init; pass a seeded one for a reproducible model, or null to leave the weight uninitialised (about to be loaded).</param>
    public Conv1D(long inFeatures, long outFeatures, double initStd, Generator? generator) : base(nameof(Conv1D))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var w = empty(inFeatures, outFeatures);
        if (generator is not null) w.normal_(0, initStd, generator);
        weight = new Parameter(w);
        bias = new Parameter(zeros(outFeatures));
        RegisterComponents();
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>[in, out].</summary>
    public Parameter Weight => weight;

    /// <summary>[out].</summary>
    public Parameter Bias => bias;

    /// <summary>(..., in) → (..., out).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var flat = x.reshape(-1, InFeatures);            // (N, in)
        var y = addmm(bias, flat, weight, beta: 1, alpha: 1); // (N, out)
        shape[^1] = OutFeatures;
        return y.view(shape).MoveToOuterDisposeScope();  // (..., out)
    }
}
