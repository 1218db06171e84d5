using TorchSharp;

namespace PrefOnline.Tensors;

/// <summary>
/// Scalar constants that live as long as the process. TorchSharp turns every C# number passed to an op
/// (including the alpha = 1 of <c>a + b</c>) into a native Scalar object that nothing references once the
/// call has started, so a garbage collection during the native call can let the finalizer thread free it
/// while libtorch still reads it (TorchSharp 0.107; upstream pull requests 1434 and 1496). Seen once as a
/// garbage alpha in an add of the decoder's residual stream. The hot paths (every layer of every forward)
/// pass these rooted instances instead.
/// </summary>
public static class RootedScalars
{
    public static readonly Scalar One = 1.0.ToScalar();

    /// <summary>torch.finfo(dtype).min for the float dtypes masks are built in.</summary>
    public static readonly Scalar MostNegativeFloat32 = ((double)float.MinValue).ToScalar();

    public static readonly Scalar MostNegativeBFloat16 = (-3.3895313892515355e38).ToScalar();

    public static readonly Scalar MostNegativeFloat16 = (-65504.0).ToScalar();

    public static readonly Scalar MostNegativeFloat64 = double.MinValue.ToScalar();
}
