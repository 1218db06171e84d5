using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

// The op surface, grouped as torch documents it. Each returns a new tensor and leaves its inputs
// alone; broadcasting follows PyTorch.
public sealed partial class Tensor
{
    // ---- conversion ----------------------------------------------------------------------------

    public Tensor To(ScalarType dtype) => Wrap(NativeMethods.pt_to_dtype(handle, (int)dtype));

    /// <summary>A copy on <paramref name="device"/> (this tensor itself when it is already there, as torch does).</summary>
    public Tensor To(Device device) => Wrap(NativeMethods.pt_to_device(handle, device.EnsureAvailable().NativeId));

    public Tensor Contiguous() => Wrap(NativeMethods.pt_contiguous(handle));

    public Tensor Clone() => Wrap(NativeMethods.pt_clone(handle));

    /// <summary>Same data, cut from the autograd graph.</summary>
    public Tensor Detach() => Wrap(NativeMethods.pt_detach(handle));

    /// <summary>A second handle to the very same tensor (shared storage and autograd identity).</summary>
    public Tensor Alias() => Wrap(NativeMethods.pt_alias(handle));

    // ---- shape and indexing ----------------------------------------------------------------------

    public unsafe Tensor Reshape(params long[] shape)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_reshape(handle, s, shape.Length));
    }

    public unsafe Tensor View(params long[] shape)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_view(handle, s, shape.Length));
    }

    public unsafe Tensor Permute(params long[] order)
    {
        fixed (long* s = order) return Wrap(NativeMethods.pt_permute(handle, s, order.Length));
    }

    public unsafe Tensor Expand(params long[] shape)
    {
        fixed (long* s = shape) return Wrap(NativeMethods.pt_expand(handle, s, shape.Length));
    }

    public unsafe Tensor Repeat(params long[] repeats)
    {
        fixed (long* s = repeats) return Wrap(NativeMethods.pt_repeat(handle, s, repeats.Length));
    }

    public Tensor Transpose(long dim0, long dim1) => Wrap(NativeMethods.pt_transpose(handle, dim0, dim1));

    /// <summary>Elements [start, end) with a step along <paramref name="dim"/>; a view like Python's a[:, s:e:k].</summary>
    public Tensor Slice(long dim, long start, long end, long step = 1) => Wrap(NativeMethods.pt_slice(handle, dim, start, end, step));

    /// <summary>Index <paramref name="index"/> of <paramref name="dim"/>, removing that dimension (a[:, i]).</summary>
    public Tensor Select(long dim, long index) => Wrap(NativeMethods.pt_select(handle, dim, index));

    /// <summary>a[i] on the first dimension.</summary>
    public Tensor this[long index] => Select(0, index);

    public Tensor Unsqueeze(long dim) => Wrap(NativeMethods.pt_unsqueeze(handle, dim));

    public Tensor Squeeze(long dim) => Wrap(NativeMethods.pt_squeeze_dim(handle, dim));

    public Tensor Flatten(long startDim = 0, long endDim = -1) => Wrap(NativeMethods.pt_flatten(handle, startDim, endDim));

    public Tensor IndexSelect(long dim, Tensor index) => Wrap(NativeMethods.pt_index_select(handle, dim, index.handle));

    public Tensor Gather(long dim, Tensor index) => Wrap(NativeMethods.pt_gather(handle, dim, index.handle));

    public Tensor MaskedFill(Tensor mask, double value) => Wrap(NativeMethods.pt_masked_fill(handle, mask.handle, value));

    public Tensor MaskedSelect(Tensor mask) => Wrap(NativeMethods.pt_masked_select(handle, mask.handle));

    public Tensor Triu(long diagonal = 0) => Wrap(NativeMethods.pt_triu(handle, diagonal));

    public Tensor Tril(long diagonal = 0) => Wrap(NativeMethods.pt_tril(handle, diagonal));

    public static unsafe Tensor Cat(IReadOnlyList<Tensor> tensors, long dim = 0) =>
        WithHandles(tensors, raw =>
        {
            fixed (IntPtr* p = raw) return Wrap(NativeMethods.pt_cat(p, raw.Length, dim), "cat");
        });

    public static unsafe Tensor Stack(IReadOnlyList<Tensor> tensors, long dim = 0) =>
        WithHandles(tensors, raw =>
        {
            fixed (IntPtr* p = raw) return Wrap(NativeMethods.pt_stack(p, raw.Length, dim), "stack");
        });

    /// <summary>Pieces of <paramref name="size"/> along <paramref name="dim"/> (the last may be shorter).</summary>
    public unsafe Tensor[] Split(long size, long dim = 0)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), "split size must be positive");
        var shape = Shape;
        var d = dim < 0 ? dim + shape.Length : dim;
        // An invalid dim is left to libtorch, whose message names the valid range.
        var length = d >= 0 && d < shape.Length ? shape[d] : 0;
        var capacity = (int)Math.Max(1, (length + size - 1) / size);
        var raw = new IntPtr[capacity];
        int count;
        fixed (IntPtr* p = raw) count = NativeMethods.pt_split(handle, size, dim, p, capacity);
        if (count < 0) throw TorchException.FromLastError("split");
        var parts = new Tensor[count];
        for (var i = 0; i < count; i++) parts[i] = new Tensor(raw[i], "split");
        return parts;
    }

    /// <summary>cond ? a : b, elementwise with broadcasting.</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b) =>
        Wrap(NativeMethods.pt_where(condition.handle, a.handle, b.handle));

    // ---- arithmetic --------------------------------------------------------------------------------

    public Tensor Add(Tensor other) => Wrap(NativeMethods.pt_add(handle, other.handle));

    public Tensor Sub(Tensor other) => Wrap(NativeMethods.pt_sub(handle, other.handle));

    public Tensor Mul(Tensor other) => Wrap(NativeMethods.pt_mul(handle, other.handle));

    public Tensor Div(Tensor other) => Wrap(NativeMethods.pt_div(handle, other.handle));

    public Tensor Add(double s) => Wrap(NativeMethods.pt_add_scalar(handle, s));

    public Tensor Sub(double s) => Wrap(NativeMethods.pt_sub_scalar(handle, s));

    public Tensor Mul(double s) => Wrap(NativeMethods.pt_mul_scalar(handle, s));

    public Tensor Div(double s) => Wrap(NativeMethods.pt_div_scalar(handle, s));

    public Tensor Pow(double exponent) => Wrap(NativeMethods.pt_pow_scalar(handle, exponent));

    public Tensor Pow(Tensor exponent) => Wrap(NativeMethods.pt_pow(handle, exponent.handle));

    public Tensor Matmul(Tensor other) => Wrap(NativeMethods.pt_matmul(handle, other.handle));

    /// <summary>bias + this @ other (one fused GEMM, as GPT-2's Conv1D layers use it).</summary>
    public Tensor AddMm(Tensor a, Tensor b) => Wrap(NativeMethods.pt_addmm(handle, a.handle, b.handle));

    public static Tensor Minimum(Tensor a, Tensor b) => Wrap(NativeMethods.pt_minimum(a.handle, b.handle));

    public static Tensor Maximum(Tensor a, Tensor b) => Wrap(NativeMethods.pt_maximum(a.handle, b.handle));

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator +(Tensor a, double s) => a.Add(s);
    public static Tensor operator +(double s, Tensor a) => a.Add(s);
    public static Tensor operator -(Tensor a, double s) => Wrap(NativeMethods.pt_sub_scalar(a.handle, s), "sub");
    public static Tensor operator -(double s, Tensor a) => Wrap(NativeMethods.pt_rsub_scalar(a.handle, s), "rsub");
    public static Tensor operator *(Tensor a, double s) => a.Mul(s);
    public static Tensor operator *(double s, Tensor a) => a.Mul(s);
    public static Tensor operator /(Tensor a, double s) => a.Div(s);
    public static Tensor operator /(double s, Tensor a) => Wrap(NativeMethods.pt_rdiv_scalar(a.handle, s), "rdiv");
    public static Tensor operator -(Tensor a) => a.Neg();

    // ---- comparisons (bool results) --------------------------------------------------------------

    public Tensor Eq(Tensor other) => Wrap(NativeMethods.pt_eq(handle, other.handle));
    public Tensor Ne(Tensor other) => Wrap(NativeMethods.pt_ne(handle, other.handle));
    public Tensor Gt(Tensor other) => Wrap(NativeMethods.pt_gt(handle, other.handle));
    public Tensor Ge(Tensor other) => Wrap(NativeMethods.pt_ge(handle, other.handle));
    public Tensor Lt(Tensor other) => Wrap(NativeMethods.pt_lt(handle, other.handle));
    public Tensor Le(Tensor other) => Wrap(NativeMethods.pt_le(handle, other.handle));
    public Tensor Eq(double s) => Wrap(NativeMethods.pt_eq_scalar(handle, s));
    public Tensor Ne(double s) => Wrap(NativeMethods.pt_ne_scalar(handle, s));
    public Tensor Gt(double s) => Wrap(NativeMethods.pt_gt_scalar(handle, s));
    public Tensor Ge(double s) => Wrap(NativeMethods.pt_ge_scalar(handle, s));
    public Tensor Lt(double s) => Wrap(NativeMethods.pt_lt_scalar(handle, s));
    public Tensor Le(double s) => Wrap(NativeMethods.pt_le_scalar(handle, s));
    public Tensor LogicalAnd(Tensor other) => Wrap(NativeMethods.pt_logical_and(handle, other.handle));
    public Tensor LogicalOr(Tensor other) => Wrap(NativeMethods.pt_logical_or(handle, other.handle));
    public Tensor LogicalNot() => Wrap(NativeMethods.pt_logical_not(handle));
    public Tensor IsFinite() => Wrap(NativeMethods.pt_isfinite(handle));

    // ---- elementwise functions -------------------------------------------------------------------

    public Tensor Neg() => Wrap(NativeMethods.pt_neg(handle));
    public Tensor Exp() => Wrap(NativeMethods.pt_exp(handle));
    public Tensor Log() => Wrap(NativeMethods.pt_log(handle));
    public Tensor Log1p() => Wrap(NativeMethods.pt_log1p(handle));
    public Tensor Sqrt() => Wrap(NativeMethods.pt_sqrt(handle));
    public Tensor Rsqrt() => Wrap(NativeMethods.pt_rsqrt(handle));
    public Tensor Abs() => Wrap(NativeMethods.pt_abs(handle));
    public Tensor Sign() => Wrap(NativeMethods.pt_sign(handle));
    public Tensor Tanh() => Wrap(NativeMethods.pt_tanh(handle));
    public Tensor Relu() => Wrap(NativeMethods.pt_relu(handle));
    public Tensor Sigmoid() => Wrap(NativeMethods.pt_sigmoid(handle));

    /// <summary>log σ(x), computed stably (the DPO loss is −logsigmoid(β·ℓ)).</summary>
    public Tensor LogSigmoid() => Wrap(NativeMethods.pt_logsigmoid(handle));

    public Tensor Softplus() => Wrap(NativeMethods.pt_softplus(handle));

    /// <summary>GELU; <paramref name="tanhApproximation"/> is GPT-2's "gelu_new".</summary>
    public Tensor Gelu(bool tanhApproximation = true) =>
        Wrap(tanhApproximation ? NativeMethods.pt_gelu_tanh(handle) : NativeMethods.pt_gelu(handle));

    public Tensor Softmax(long dim) => Wrap(NativeMethods.pt_softmax(handle, dim));
    public Tensor LogSoftmax(long dim) => Wrap(NativeMethods.pt_log_softmax(handle, dim));
    public Tensor Cumsum(long dim) => Wrap(NativeMethods.pt_cumsum(handle, dim));

    public Tensor Clamp(double? min = null, double? max = null) =>
        Wrap(NativeMethods.pt_clamp(handle, min ?? 0, max ?? 0, min.HasValue ? 1 : 0, max.HasValue ? 1 : 0));

    // ---- reductions --------------------------------------------------------------------------------

    public Tensor Sum() => Wrap(NativeMethods.pt_sum_all(handle));
    public Tensor Mean() => Wrap(NativeMethods.pt_mean_all(handle));
    public Tensor Max() => Wrap(NativeMethods.pt_max_all(handle));
    public Tensor Min() => Wrap(NativeMethods.pt_min_all(handle));
    public Tensor All() => Wrap(NativeMethods.pt_all(handle));
    public Tensor Any() => Wrap(NativeMethods.pt_any(handle));

    /// <summary>The L2 norm of all elements.</summary>
    public Tensor Norm() => Wrap(NativeMethods.pt_norm(handle));

    public unsafe Tensor Sum(long[] dims, bool keepDim = false)
    {
        fixed (long* d = dims) return Wrap(NativeMethods.pt_sum(handle, d, dims.Length, keepDim ? 1 : 0));
    }

    public Tensor Sum(long dim, bool keepDim = false) => Sum([dim], keepDim);

    public unsafe Tensor Mean(long[] dims, bool keepDim = false)
    {
        fixed (long* d = dims) return Wrap(NativeMethods.pt_mean(handle, d, dims.Length, keepDim ? 1 : 0));
    }

    public Tensor Mean(long dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>log Σ exp over <paramref name="dim"/>, computed stably.</summary>
    public Tensor LogSumExp(long dim, bool keepDim = false) => LogSumExp([dim], keepDim);

    /// <summary>log Σ exp over several dims at once, computed stably.</summary>
    public unsafe Tensor LogSumExp(long[] dims, bool keepDim = false)
    {
        fixed (long* d = dims) return Wrap(NativeMethods.pt_logsumexp(handle, d, dims.Length, keepDim ? 1 : 0));
    }

    public unsafe Tensor Var(long dim, bool unbiased = true, bool keepDim = false)
    {
        long[] dims = [dim];
        fixed (long* d = dims) return Wrap(NativeMethods.pt_var(handle, d, 1, unbiased ? 1 : 0, keepDim ? 1 : 0));
    }

    public unsafe (Tensor Values, Tensor Indices) Max(long dim, bool keepDim = false)
    {
        var raw = stackalloc IntPtr[2];
        Check(NativeMethods.pt_max_dim(handle, dim, keepDim ? 1 : 0, raw), "max");
        return (new Tensor(raw[0], "max"), new Tensor(raw[1], "max"));
    }

    public unsafe (Tensor Values, Tensor Indices) Min(long dim, bool keepDim = false)
    {
        var raw = stackalloc IntPtr[2];
        Check(NativeMethods.pt_min_dim(handle, dim, keepDim ? 1 : 0, raw), "min");
        return (new Tensor(raw[0], "min"), new Tensor(raw[1], "min"));
    }

    public Tensor ArgMax(long dim, bool keepDim = false) => Wrap(NativeMethods.pt_argmax(handle, dim, keepDim ? 1 : 0));

    // ---- sampling ----------------------------------------------------------------------------------

    /// <summary>Draws <paramref name="samples"/> indices per row of a probability tensor.</summary>
    public Tensor Multinomial(long samples, bool replacement, Generator? generator) =>
        Wrap(NativeMethods.pt_multinomial(handle, samples, replacement ? 1 : 0, Generator.Raw(generator)));

    public unsafe (Tensor Values, Tensor Indices) TopK(long k, long dim = -1, bool largest = true)
    {
        var raw = stackalloc IntPtr[2];
        Check(NativeMethods.pt_topk(handle, k, dim, largest ? 1 : 0, raw), "topk");
        return (new Tensor(raw[0], "topk"), new Tensor(raw[1], "topk"));
    }

    public unsafe (Tensor Values, Tensor Indices) Sort(long dim = -1, bool descending = false)
    {
        var raw = stackalloc IntPtr[2];
        Check(NativeMethods.pt_sort(handle, dim, descending ? 1 : 0, raw), "sort");
        return (new Tensor(raw[0], "sort"), new Tensor(raw[1], "sort"));
    }

    // ---- autograd ----------------------------------------------------------------------------------

    /// <summary>Back-propagates from this tensor (a scalar unless <paramref name="gradient"/> is given).</summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false)
    {
        var added = false;
        try
        {
            gradient?.handle.DangerousAddRef(ref added);
            Check(NativeMethods.pt_backward(handle, RawOrNull(gradient), retainGraph ? 1 : 0), "backward");
        }
        finally
        {
            if (added) gradient!.handle.DangerousRelease();
        }
    }

    /// <summary>The accumulated gradient (a new handle to it), or null before any backward.</summary>
    public Tensor? Grad
    {
        get
        {
            Check(NativeMethods.pt_grad(handle, out var raw), "grad");
            return raw == IntPtr.Zero ? null : new Tensor(raw, "grad");
        }
    }

    /// <summary>Drops the gradient (set-to-none).</summary>
    public void ClearGrad() => Check(NativeMethods.pt_clear_grad(handle), "zero_grad");

    // ---- in place (never recorded by autograd: parameter loading, init, optimiser state) ----------

    public void CopyFrom(Tensor source) => Check(NativeMethods.pt_copy_(handle, source.handle), "copy_");

    public void Fill(double value) => Check(NativeMethods.pt_fill_(handle, value), "fill_");

    public void NormalInPlace(double mean, double std, Generator? generator) =>
        Check(NativeMethods.pt_normal_(handle, mean, std, Generator.Raw(generator)), "normal_");

    public void UniformInPlace(double from, double to, Generator? generator) =>
        Check(NativeMethods.pt_uniform_(handle, from, to, Generator.Raw(generator)), "uniform_");

    /// <summary>this += alpha · source.</summary>
    public void AddInPlace(Tensor source, double alpha = 1) => Check(NativeMethods.pt_add_(handle, source.handle, alpha), "add_");

    public void MulInPlace(double factor) => Check(NativeMethods.pt_mul_scalar_(handle, factor), "mul_");

    /// <summary>
    /// Makes this tensor use <paramref name="source"/>'s data (device, dtype, shape) while keeping its
    /// identity: handle, autograd leaf status, requires_grad (torch's <c>param.data = ...</c>). Modules
    /// move their parameters this way so every reference to them (an optimiser's) stays valid.
    /// </summary>
    internal void SetData(Tensor source) => Check(NativeMethods.pt_set_data(handle, source.handle), "set_data");
}
