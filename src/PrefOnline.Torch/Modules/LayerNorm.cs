namespace PrefOnline.Torch.Modules;

/// <summary>Normalises the last dimension, then scales and shifts (weight = 1, bias = 0 initially).</summary>
public sealed class LayerNorm : Module
{
    private readonly long[] normalizedShape;

    public LayerNorm(long dim, double eps = 1e-5)
    {
        normalizedShape = [dim];
        Eps = eps;
        Weight = RegisterParameter("weight", Tensor.Ones([dim]));
        Bias = RegisterParameter("bias", Tensor.Zeros([dim]));
    }

    public double Eps { get; }

    public Tensor Weight { get; }

    public Tensor Bias { get; }

    public Tensor Forward(Tensor x) => Functional.LayerNorm(x, normalizedShape, Weight, Bias, Eps);
}
