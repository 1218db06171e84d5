namespace PrefOnline.Torch.Modules;

/// <summary>y = x Wᵀ + b with W shaped [out, in] (torch.nn.Linear), initialised as PyTorch does:
/// U(−1/√in, 1/√in) for weight and bias.</summary>
public sealed class Linear : Module
{
    public Linear(long inFeatures, long outFeatures, bool bias = true, Generator? generator = null)
    {
        var bound = 1.0 / Math.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", Uniform([outFeatures, inFeatures], bound, generator));
        if (bias) Bias = RegisterParameter("bias", Uniform([outFeatures], bound, generator));
    }

    public Tensor Weight { get; }

    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x) => Functional.Linear(x, Weight, Bias);

    private static Tensor Uniform(long[] shape, double bound, Generator? generator)
    {
        var t = Tensor.Empty(shape);
        t.UniformInPlace(-bound, bound, generator);
        return t;
    }
}
