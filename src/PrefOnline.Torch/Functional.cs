using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

/// <summary>Neural-network functions (torch.nn.functional): stateless, parameters passed in.</summary>
public static class Functional
{
    /// <summary>x @ weightᵀ + bias, with weight shaped [out, in] as torch.nn.Linear stores it.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        var added = false;
        try
        {
            bias?.Handle.DangerousAddRef(ref added);
            return new Tensor(NativeMethods.pt_linear(x.Handle, weight.Handle, Tensor.RawOrNull(bias)), "linear");
        }
        finally
        {
            if (added) bias!.Handle.DangerousRelease();
        }
    }

    /// <summary>Layer normalisation over the trailing <paramref name="normalizedShape"/> dimensions.</summary>
    public static unsafe Tensor LayerNorm(Tensor x, long[] normalizedShape, Tensor? weight, Tensor? bias, double eps = 1e-5)
    {
        bool addedW = false, addedB = false;
        try
        {
            weight?.Handle.DangerousAddRef(ref addedW);
            bias?.Handle.DangerousAddRef(ref addedB);
            fixed (long* s = normalizedShape)
            {
                return new Tensor(
                    NativeMethods.pt_layer_norm(x.Handle, s, normalizedShape.Length, Tensor.RawOrNull(weight), Tensor.RawOrNull(bias), eps),
                    "layer_norm");
            }
        }
        finally
        {
            if (addedW) weight!.Handle.DangerousRelease();
            if (addedB) bias!.Handle.DangerousRelease();
        }
    }

    /// <summary>Rows of <paramref name="weight"/> picked by int64 <paramref name="indices"/>.</summary>
    public static Tensor Embedding(Tensor weight, Tensor indices) =>
        new(NativeMethods.pt_embedding(weight.Handle, indices.Handle), "embedding");

    /// <summary>Inverted dropout (scaled by 1/(1−p)); identity when not training or p = 0.</summary>
    public static Tensor Dropout(Tensor x, double p, bool training, Generator? generator)
    {
        if (!training || p == 0) return x.Alias();
        return new Tensor(NativeMethods.pt_dropout(x.Handle, p, Generator.Raw(generator)), "dropout");
    }

    /// <summary>Mean cross-entropy of logits [N, C] against int64 targets [N]; targets equal to
    /// <paramref name="ignoreIndex"/> (padding) do not count.</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, long ignoreIndex = -100, double labelSmoothing = 0) =>
        new(NativeMethods.pt_cross_entropy(logits.Handle, target.Handle, ignoreIndex, labelSmoothing), "cross_entropy");

    /// <summary>Mean squared error over all elements (torch.nn.functional.mse_loss, reduction "mean"); one fused kernel.</summary>
    public static Tensor MseLoss(Tensor input, Tensor target) =>
        new(NativeMethods.pt_mse_loss(input.Handle, target.Handle), "mse_loss");

    /// <summary>A [T, T] bool mask, true above the diagonal: the future positions causal attention hides.</summary>
    public static Tensor CausalMask(long length, Device? device = null)
    {
        using var scope = DisposeScope.Enter();
        using var ones = Tensor.Ones([length, length], ScalarType.Bool, device);
        return ones.Triu(1).MoveToOuterScope();
    }
}
