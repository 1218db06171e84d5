namespace PrefOnline.Torch.Decoding;

/// <summary>Which compiled copy of the fused decoder's kernels runs (x86-64 micro-architecture levels).</summary>
public enum Gpt2KernelLevel
{
    /// <summary>x86-64 baseline: SSE2, runs on every x86-64 CPU.</summary>
    Baseline = 0,

    /// <summary>x86-64-v3: AVX2 + FMA (Haswell, Zen 1 and later).</summary>
    Avx2 = 1,

    /// <summary>x86-64-v4: AVX-512 (Skylake-SP, Zen 4 and later).</summary>
    Avx512 = 2,
}
