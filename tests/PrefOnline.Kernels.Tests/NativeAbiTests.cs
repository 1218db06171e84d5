using System.Runtime.CompilerServices;
using PrefOnline.Kernels.Interop;
using PrefOnline.Learning.Randomness;

namespace PrefOnline.Kernels.Tests;

/// <summary>The C ABI and the process-wide settings of libprefonline_kernels.so.</summary>
public class NativeAbiTests
{
    [Fact]
    public void The_managed_structs_have_the_native_sizes()
    {
        Assert.Equal(NativeMethods.pk_abi_size(0), Unsafe.SizeOf<PkTensor>());
        Assert.Equal(NativeMethods.pk_abi_size(1), Unsafe.SizeOf<PkGpt2Shape>());
        Assert.Equal(NativeMethods.pk_abi_size(2), Unsafe.SizeOf<PkDecodeRequest>());
        Assert.Equal(NativeMethods.pk_abi_size(3), Unsafe.SizeOf<PkDecodeOutput>());
        Assert.Equal(-1, NativeMethods.pk_abi_size(4));
    }

    /// <summary>A row's random stream is the product's managed generator, bit for bit, from the same
    /// seed (so a managed sampler and the kernels draw the same uniforms).</summary>
    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(0x9E3779B97F4A7C15UL)]
    [InlineData(ulong.MaxValue)]
    public void A_rows_random_stream_is_the_products_xoshiro256_starstar(ulong seed)
    {
        var managed = new Xoshiro256StarStar(seed);
        var expected = Enumerable.Range(0, 1000).Select(_ => managed.NextUInt64()).ToArray();
        Assert.Equal(expected, FusedKernels.RowRandom(seed, 1000));
    }

    [Fact]
    public void The_thread_count_is_set_and_validated()
    {
        var before = FusedKernels.Threads;
        Assert.InRange(before, 1, FusedKernels.MaxThreads);
        try
        {
            FusedKernels.Threads = 3;
            Assert.Equal(3, FusedKernels.Threads);
            Assert.Throws<ArgumentOutOfRangeException>(() => FusedKernels.Threads = 0);
            Assert.Throws<ArgumentOutOfRangeException>(() => FusedKernels.Threads = FusedKernels.MaxThreads + 1);
            Assert.Equal(3, FusedKernels.Threads);
        }
        finally
        {
            FusedKernels.Threads = before;
        }
    }

    [Fact]
    public void A_level_above_the_cpus_gives_its_best_and_lower_levels_can_be_forced()
    {
        var best = FusedKernels.Level;
        try
        {
            Assert.Equal(best, FusedKernels.SelectLevel(KernelLevel.Avx512));
            Assert.Equal(KernelLevel.Baseline, FusedKernels.SelectLevel(KernelLevel.Baseline));
            Assert.Equal(KernelLevel.Baseline, FusedKernels.Level);
            Assert.Throws<ArgumentOutOfRangeException>(() => FusedKernels.SelectLevel((KernelLevel)7));
        }
        finally
        {
            FusedKernels.SelectLevel(best);
        }
    }
}
