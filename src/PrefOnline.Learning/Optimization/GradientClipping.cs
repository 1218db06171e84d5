using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Optimization;

/// <summary>Whole-model gradient clipping.</summary>
public static class GradientClipping
{
    /// <summary>
    /// torch.nn.utils.clip_grad_norm_ (L2) computed as PyTorch computes it, in the gradients' own dtype:
    /// per-gradient norms, the norm of their stack, coefficient max_norm / (total + 1e-6) clamped to 1,
    /// every gradient multiplied by it; returns the norm before scaling. Parameters without a gradient are
    /// ignored. One deliberate difference from TorchSharp's clip_grad_norm_ (libtorch's C++ one): a
    /// non-finite norm is returned as is and nothing is scaled, because the caller must skip that step
    /// and the gradients stay inspectable (PyTorch would multiply them by NaN).
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        if (!(maxNorm > 0) || double.IsInfinity(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "max norm must be positive and finite");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        var total = linalg.vector_norm(stack(grads.Select(g => linalg.vector_norm(g, 2)).ToArray()), 2);  // scalar
        var norm = total.ToDouble();
        if (!double.IsFinite(norm)) return norm;
        var coefficient = (total + 1e-6).reciprocal().mul(maxNorm).clamp(max: 1.0);               // max_norm / (total + ε), ≤ 1
        foreach (var g in grads) g.mul_(coefficient.to(g.device));
        return norm;
    }
}
