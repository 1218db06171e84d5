using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

// Creation of new tensors: constants, ranges and random draws (always from an explicit generator
// when reproducibility matters; a null generator uses libtorch's global one).
public sealed partial class Tensor
{
    public static unsafe Tensor Empty(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_empty(s, shape.Length, (int)dtype, NativeDevice(device)));
    }

    public static unsafe Tensor Zeros(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_zeros(s, shape.Length, (int)dtype, NativeDevice(device)));
    }

    public static Tensor Ones(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null) => Full(shape, 1.0, dtype, device);

    public static unsafe Tensor Full(long[] shape, double value, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_full(s, shape.Length, value, (int)dtype, NativeDevice(device)));
    }

    /// <summary>[start, end) in steps of <paramref name="step"/>, int64 by default like torch.arange on integers.</summary>
    public static Tensor Arange(double start, double end, double step = 1, ScalarType dtype = ScalarType.Int64, Device? device = null) =>
        Wrap(NativeMethods.pt_arange(start, end, step, (int)dtype, NativeDevice(device)));

    /// <summary>Standard normal draws.</summary>
    public static unsafe Tensor Randn(long[] shape, Generator? generator = null, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_randn(s, shape.Length, Generator.Raw(generator), (int)dtype, NativeDevice(device)));
    }

    /// <summary>Uniform draws on [0, 1).</summary>
    public static unsafe Tensor Rand(long[] shape, Generator? generator = null, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_rand(s, shape.Length, Generator.Raw(generator), (int)dtype, NativeDevice(device)));
    }

    /// <summary>Integers uniform on [low, high), int64.</summary>
    public static unsafe Tensor RandInt(long low, long high, long[] shape, Generator? generator = null, Device? device = null)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_randint(low, high, s, shape.Length, Generator.Raw(generator), NativeDevice(device)));
    }

    public Tensor ZerosLike() => Zeros(Shape, Dtype, Device);

    public Tensor OnesLike() => Ones(Shape, Dtype, Device);

    private static int NativeDevice(Device? device) => (device ?? Device.Cpu).EnsureAvailable().NativeId;
}
