using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

// Batched matrix products (torch.bmm, torch.baddbmm).
public sealed partial class Tensor
{
    /// <summary>this (B, n, m) @ <paramref name="other"/> (B, m, p) → (B, n, p).</summary>
    public Tensor Bmm(Tensor other) => Wrap(NativeMethods.pt_bmm(handle, other.handle));

    /// <summary>
    /// β·this + α·(<paramref name="batch1"/> @ <paramref name="batch2"/>) in one GEMM (torch.baddbmm);
    /// this broadcasts to (B, n, p). Attention uses it to apply the 1/√d scale and an additive mask
    /// (0 visible, a huge negative number hidden) inside the score GEMM.
    /// </summary>
    public Tensor BAddBmm(Tensor batch1, Tensor batch2, double beta = 1, double alpha = 1) =>
        Wrap(NativeMethods.pt_baddbmm(handle, batch1.handle, batch2.handle, beta, alpha));
}
