using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors;

/// <summary>
/// The GEMM speed of the loaded libtorch on this machine: the peak a model's FLOP rate is judged
/// against (MFU in <c>prefonline bench</c>) and the speed line of <c>prefonline info</c>. Runs on the
/// calling thread with libtorch's configured thread count.
/// </summary>
public static class GemmProbe
{
    /// <summary>Best GFLOP/s of <paramref name="repeats"/> float32 products of two n×n matrices
    /// (2n³ flops each) after one warm-up, on <paramref name="device"/> (CPU by default).</summary>
    public static double MeasureGflops(int n = 1024, int repeats = 5, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        TorchEngine.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var generator = new Generator(0);
        var a = randn([n, n], generator: generator).to(device ?? CPU);
        var b = randn([n, n], generator: generator).to(device ?? CPU);
        a.mm(b).Dispose();  // warm-up: the first call starts libtorch's thread pool
        Synchronize(device);
        var best = double.MaxValue;
        for (var i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            using (a.mm(b)) Synchronize(device);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    private static void Synchronize(Device? device)
    {
        if (device is { type: DeviceType.CUDA }) cuda.synchronize(device);
    }
}
