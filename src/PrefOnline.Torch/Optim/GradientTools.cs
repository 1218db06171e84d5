using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch.Optim;

/// <summary>Whole-model gradient operations, each one native call.</summary>
public static class GradientTools
{
    /// <summary>
    /// torch.nn.utils.clip_grad_norm_ (PyTorch 1.13, L2): scales all gradients by
    /// min(1, maxNorm / (norm + 1e-6)), computed in the gradients' dtype exactly as PyTorch does, and
    /// returns the norm before scaling. Parameters without a gradient are ignored. A non-finite norm
    /// is returned as is and nothing is scaled: the caller must skip the step (PyTorch would scale by NaN).
    /// </summary>
    public static unsafe double ClipGradNorm(IReadOnlyList<Tensor> parameters, double maxNorm)
    {
        if (!(maxNorm > 0) || double.IsInfinity(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "max norm must be positive and finite");
        double norm = 0;
        var status = Tensor.WithHandles(parameters, raw =>
        {
            fixed (IntPtr* p = raw) return NativeMethods.pt_clip_grad_norm(p, raw.Length, maxNorm, out norm);
        });
        Tensor.Check(status, "clip_grad_norm");
        return norm;
    }

    /// <summary>True when no gradient holds NaN or ±Inf.</summary>
    public static unsafe bool AllGradientsFinite(IReadOnlyList<Tensor> parameters)
    {
        var finite = 0;
        var status = Tensor.WithHandles(parameters, raw =>
        {
            fixed (IntPtr* p = raw) return NativeMethods.pt_grads_finite(p, raw.Length, out finite);
        });
        Tensor.Check(status, "grads_finite");
        return finite != 0;
    }
}
