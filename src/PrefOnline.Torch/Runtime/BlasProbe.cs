using System.Diagnostics;

namespace PrefOnline.Torch;

/// <summary>
/// Detects Debian's reference BLAS, which libtorch silently uses when no optimised BLAS is
/// installed: matmuls run ~25x slower (6.9 vs 165 GFLOP/s measured on 2 cores) and nothing else
/// says so. A quick GEMM probe tells the two apart by a wide margin.
/// </summary>
public static class BlasProbe
{
    /// <summary>Below this, the BLAS is not an optimised one (OpenBLAS single-thread is far above).</summary>
    public const double SlowThresholdGflops = 25;

    public const string FixCommand = "apt-get install -y libopenblas0-openmp";

    /// <summary>Best-of-3 GFLOP/s of a float32 GEMM of size <paramref name="n"/>³ on the calling thread.</summary>
    public static double MeasureGemmGflops(int n = 384)
    {
        using var scope = DisposeScope.Enter();
        using var gen = new Generator(0);
        var a = Tensor.Randn([n, n], gen);
        var b = Tensor.Randn([n, n], gen);
        a.Matmul(b).Dispose(); // warm-up: first call pays for thread-pool start
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            a.Matmul(b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    /// <summary>Which libblas.so.3 the process mapped (from /proc/self/maps), or null when none is.</summary>
    public static string? LoadedBlasLibrary()
    {
        try
        {
            return File.ReadLines("/proc/self/maps")
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
                .FirstOrDefault(p => p != null && (p.Contains("libblas.so", StringComparison.Ordinal) || p.Contains("libopenblas", StringComparison.Ordinal)));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>A warning to log, or null when the BLAS looks optimised.</summary>
    public static string? Check()
    {
        var gflops = MeasureGemmGflops();
        if (gflops >= SlowThresholdGflops) return null;
        var library = LoadedBlasLibrary() ?? "unknown";
        return $"matrix multiply runs at {gflops:F1} GFLOP/s: libtorch is using a slow BLAS ({library}); training will be ~25x slower. Fix: {FixCommand}";
    }
}
