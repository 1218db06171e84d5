using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

/// <summary>
/// A libtorch tensor owned by managed code. Every operation returns a new tensor and never disposes
/// its inputs. A new tensor belongs to the innermost <see cref="DisposeScope"/> of the creating
/// thread, if there is one; otherwise the caller owns it and disposes it.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private readonly TensorHandle handle;

    internal Tensor(IntPtr raw, string operation)
    {
        if (raw == IntPtr.Zero) throw TorchException.FromLastError(operation);
        handle = new TensorHandle(raw);
        DisposeScope.Current?.Register(this);
    }

    internal TensorHandle Handle => handle;

    internal DisposeScope? OwningScope { get; set; }

    public bool IsDisposed => handle.IsClosed;

    public void Dispose() => handle.Dispose();

    /// <summary>
    /// Hands the tensor from its scope to that scope's outer scope (or to the caller when there is
    /// none) and returns it, so a function can return a result computed inside its own scope. A
    /// tensor in no scope stays in none. Must run on the scope's thread.
    /// </summary>
    public Tensor MoveToOuterScope()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        var scope = OwningScope;
        if (scope is null) return this;
        scope.EnsureOwnerThread("move a tensor out of");
        OwningScope = null;
        scope.Outer?.Register(this);
        return this;
    }

    /// <summary>Takes the tensor out of every scope: the caller now owns it and disposes it (module parameters do this).</summary>
    public Tensor DetachFromScope()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        OwningScope?.EnsureOwnerThread("detach a tensor from");
        OwningScope = null;
        return this;
    }

    // ---- inspection ----------------------------------------------------------------------------

    public int Dim => NativeMethods.pt_ndim(handle);

    public long NumberOfElements => NativeMethods.pt_numel(handle);

    public ScalarType Dtype => (ScalarType)NativeMethods.pt_dtype(handle);

    public Device Device
    {
        get
        {
            var id = NativeMethods.pt_device(handle);
            return id < 0 ? Device.Cpu : Device.Cuda(id);
        }
    }

    public unsafe long[] Shape
    {
        get
        {
            var shape = new long[Dim];
            fixed (long* p = shape) NativeMethods.pt_shape(handle, p);
            return shape;
        }
    }

    /// <summary>Size of one dimension; negative indices count from the end.</summary>
    public long Size(int dim)
    {
        var shape = Shape;
        var d = dim < 0 ? shape.Length + dim : dim;
        if (d < 0 || d >= shape.Length)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"dimension out of range for a tensor of rank {shape.Length}");
        return shape[d];
    }

    public bool RequiresGrad
    {
        get => NativeMethods.pt_requires_grad(handle) != 0;
        set => Check(NativeMethods.pt_set_requires_grad(handle, value ? 1 : 0), "requires_grad_");
    }

    public bool IsLeaf => NativeMethods.pt_is_leaf(handle) != 0;

    public override string ToString() =>
        IsDisposed ? "Tensor(disposed)" : $"Tensor({Dtype}, [{string.Join(", ", Shape)}], {Device})";

    // ---- managed data in and out ---------------------------------------------------------------

    /// <summary>A tensor holding a copy of <paramref name="data"/>; no shape means 1-D of the array's length.</summary>
    public static Tensor FromArray<T>(T[] data, params long[] shape) where T : unmanaged =>
        FromSpan<T>(data, shape.Length == 0 ? [data.LongLength] : shape);

    public static unsafe Tensor FromSpan<T>(ReadOnlySpan<T> data, long[] shape, Device? device = null) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data);
        return FromBytes(bytes, shape, ScalarTypeExtensions.Of<T>(), device);
    }

    /// <summary>A tensor from raw little-endian element bytes (how float16/bfloat16 arrive from files).</summary>
    public static unsafe Tensor FromBytes(ReadOnlySpan<byte> bytes, long[] shape, ScalarType dtype, Device? device = null)
    {
        fixed (byte* p = bytes)
        fixed (long* s = shape)
        {
            return new Tensor(
                NativeMethods.pt_from_bytes(p, bytes.Length, s, shape.Length, (int)dtype, (device ?? Device.Cpu).EnsureAvailable().NativeId),
                "from_bytes");
        }
    }

    /// <summary>Same as <see cref="FromBytes"/> but from unmanaged memory (a memory-mapped file).</summary>
    public static unsafe Tensor FromPointer(byte* data, long length, long[] shape, ScalarType dtype, Device? device = null)
    {
        fixed (long* s = shape)
        {
            return new Tensor(
                NativeMethods.pt_from_bytes(data, length, s, shape.Length, (int)dtype, (device ?? Device.Cpu).EnsureAvailable().NativeId),
                "from_bytes");
        }
    }

    /// <summary>A 0-dimensional tensor (shape []), like torch.tensor(value).</summary>
    public static Tensor Scalar(float value) => FromSpan<float>([value], []);

    /// <summary>A 0-dimensional float64 tensor.</summary>
    public static Tensor Scalar(double value) => FromSpan<double>([value], []);

    /// <summary>A 0-dimensional int64 tensor.</summary>
    public static Tensor Scalar(long value) => FromSpan<long>([value], []);

    /// <summary>A 0-dimensional bool tensor.</summary>
    public static Tensor Scalar(bool value) => FromSpan<bool>([value], []);

    /// <summary>Copies the elements (row-major) into a new managed array; the dtype must match <typeparamref name="T"/>.</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        var expected = ScalarTypeExtensions.Of<T>();
        if (Dtype != expected)
            throw new InvalidOperationException($"tensor holds {Dtype}, cannot copy to {typeof(T).Name}[] ({expected}); convert with To() first");
        var result = new T[NumberOfElements];
        CopyToBytes(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    public unsafe void CopyToBytes(Span<byte> destination)
    {
        fixed (byte* p = destination) Check(NativeMethods.pt_copy_to_bytes(handle, p, destination.Length), "copy_to");
    }

    public long ByteSize => NumberOfElements * Dtype.ElementSize();

    public double ToDouble()
    {
        Check(NativeMethods.pt_item_double(handle, out var v), "item");
        return v;
    }

    public float ToSingle() => (float)ToDouble();

    public long ToInt64()
    {
        Check(NativeMethods.pt_item_long(handle, out var v), "item");
        return v;
    }

    // ---- helpers shared by the op files ---------------------------------------------------------

    internal static void Check(int status, string operation)
    {
        if (status != 0) throw TorchException.FromLastError(operation);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Tensor Wrap(IntPtr raw, [CallerMemberName] string operation = "") => new(raw, operation);

    /// <summary>Runs <paramref name="call"/> with the raw handles of <paramref name="tensors"/>, kept alive throughout.</summary>
    internal static unsafe TResult WithHandles<TResult>(IReadOnlyList<Tensor> tensors, Func<IntPtr[], TResult> call)
    {
        var raw = new IntPtr[tensors.Count];
        var added = new bool[tensors.Count];
        try
        {
            for (var i = 0; i < raw.Length; i++)
            {
                tensors[i].handle.DangerousAddRef(ref added[i]);
                raw[i] = tensors[i].handle.DangerousGetHandle();
            }
            return call(raw);
        }
        finally
        {
            for (var i = 0; i < raw.Length; i++)
                if (added[i]) tensors[i].handle.DangerousRelease();
        }
    }

    /// <summary>An optional tensor argument as a raw pointer (null when absent); the caller keeps it alive.</summary>
    internal static IntPtr RawOrNull(Tensor? t) => t is null ? IntPtr.Zero : t.handle.DangerousGetHandle();
}
