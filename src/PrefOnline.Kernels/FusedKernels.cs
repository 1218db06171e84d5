using PrefOnline.Kernels.Interop;

namespace PrefOnline.Kernels;

/// <summary>Which compiled copy of the kernels runs (x86-64 micro-architecture levels).</summary>
public enum KernelLevel
{
    /// <summary>x86-64 baseline: SSE2, runs on every x86-64 CPU (and the only copy on other architectures).</summary>
    Baseline = 0,

    /// <summary>x86-64-v3: AVX2 + FMA (Haswell, Zen 1 and later).</summary>
    Avx2 = 1,

    /// <summary>x86-64-v4: AVX-512 (Skylake-SP, Zen 4 and later).</summary>
    Avx512 = 2,
}

/// <summary>
/// Process-wide settings of the native kernels (libprefonline_kernels.so): the ISA level and the
/// thread count of their pool. Both apply to every decoder in the process from its next call on.
/// </summary>
public static class FusedKernels
{
    /// <summary>Largest thread count the pool accepts.</summary>
    public const int MaxThreads = 256;

    /// <summary>The kernel set in use: by default the widest the CPU supports.</summary>
    public static KernelLevel Level => (KernelLevel)Checked(NativeMethods.pk_kernel_level(-1), "kernel level");

    /// <summary>
    /// Switches to the highest supported kernel set not above <paramref name="level"/> and returns the
    /// one now in effect. For tests (each compiled copy can be checked on one machine) and A/B
    /// measurements; production leaves the default.
    /// </summary>
    public static KernelLevel SelectLevel(KernelLevel level)
    {
        if (!Enum.IsDefined(level)) throw new ArgumentOutOfRangeException(nameof(level), level, "unknown kernel level");
        return (KernelLevel)Checked(NativeMethods.pk_kernel_level((int)level), "kernel level");
    }

    /// <summary>
    /// Threads the kernels split their loops over, the calling thread included (default: the
    /// machine's core count). Set it to the tensor engine's intra-op thread count so both use the
    /// same cores. Workers spin for ~0.2 ms after a loop, then sleep.
    /// </summary>
    public static int Threads
    {
        get => Checked(NativeMethods.pk_threads(0), "kernel threads");
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxThreads);
            Checked(NativeMethods.pk_threads(value), "kernel threads");
        }
    }

    /// <summary>The first <paramref name="count"/> 64-bit outputs of the random stream of a row seeded
    /// with <paramref name="seed"/> (native/row_random.h: xoshiro256** seeded through SplitMix64).</summary>
    internal static unsafe ulong[] RowRandom(ulong seed, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var output = new ulong[count];
        int status;
        fixed (ulong* o = output) status = NativeMethods.pk_row_random(seed, count, o);
        if (status != 0) throw KernelException.FromLastError("row random");
        return output;
    }

    private static int Checked(int result, string operation) => result >= 0 ? result : throw KernelException.FromLastError(operation);
}
