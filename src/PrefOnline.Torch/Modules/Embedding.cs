namespace PrefOnline.Torch.Modules;

/// <summary>A lookup table [count, dim]; N(0, <paramref name="initStd"/>²) init (GPT-2 uses 0.02, torch 1.0).</summary>
public sealed class Embedding : Module
{
    public Embedding(long count, long dim, double initStd = 1.0, Generator? generator = null)
    {
        var w = Tensor.Empty([count, dim]);
        w.NormalInPlace(0, initStd, generator);
        Weight = RegisterParameter("weight", w);
    }

    public Tensor Weight { get; }

    /// <summary>int64 indices of any shape → [..., dim].</summary>
    public Tensor Forward(Tensor indices) => Functional.Embedding(Weight, indices);
}
