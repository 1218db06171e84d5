using System.Diagnostics;

namespace PrefOnline.Torch;

/// <summary>
/// Detects Debian's reference BLAS, which libtorch silently uses when no optimised BLAS is selected:
/// matmuls run ~25x slower (6.9 vs 165 GFLOP/s measured on 2 cores) and nothing else says so. A quick
/// GEMM probe (a few milliseconds with OpenBLAS) tells the two apart by a wide margin; the mapped
/// libblas.so.3 says which library it is, so the warning names the right fix. Call
/// <see cref="Check"/> once at start-up on the tensor thread and log <see cref="BlasCheckResult.Warning"/>.
/// </summary>
public static class BlasProbe
{
    /// <summary>Below this, the BLAS is not an optimised one (OpenBLAS single-threaded is far above, reference far below).</summary>
    public const double SlowThresholdGflops = 25;

    public const string OpenBlasPackage = "libopenblas0-openmp";

    public const string FixCommand = "apt-get install -y --no-install-recommends " + OpenBlasPackage;

    private const string OpenBlasOpenMpLibrary = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3";

    public const string SelectOpenBlasCommand = "update-alternatives --set libblas.so.3-x86_64-linux-gnu " + OpenBlasOpenMpLibrary;

    /// <summary>Measures, identifies and judges the BLAS on the calling thread (~50 ms with reference BLAS, ~5 ms with OpenBLAS).</summary>
    public static BlasCheckResult Check()
    {
        var gflops = MeasureGemmGflops();
        var library = LoadedBlasLibrary();
        var kind = Classify(library);
        return new BlasCheckResult(gflops, library, kind, WarningFor(gflops, library, kind, File.Exists(OpenBlasOpenMpLibrary)));
    }

    /// <summary>The warning for a measured speed and library; null when fine. Public for tests and hosts with their own probe.</summary>
    public static string? WarningFor(double gflops, string? library, BlasKind kind, bool openBlasOpenMpInstalled)
    {
        var fix = openBlasOpenMpInstalled ? $"as root: {SelectOpenBlasCommand}" : $"as root: {FixCommand}";
        var where = library ?? "an unidentified BLAS";
        switch (kind)
        {
            case BlasKind.Reference:
                return $"libtorch is using the reference BLAS ({where}): matrix multiply runs at {gflops:F1} GFLOP/s and training ~25x slower than with OpenBLAS. Fix {fix}";
            case BlasKind.OpenBlasPthread:
                return $"libtorch is using OpenBLAS's pthread flavour ({where}), which ignores the configured thread count and oversubscribes the cores. Fix {fix}";
            case BlasKind.OpenBlasOpenMp or BlasKind.OpenBlasSerial:
                // An optimised library measured slow means a busy machine, not a wrong install.
                return null;
            default:
                return gflops >= SlowThresholdGflops
                    ? null
                    : $"matrix multiply runs at {gflops:F1} GFLOP/s (below {SlowThresholdGflops}): libtorch seems to use a slow BLAS ({where}); training will be much slower. Fix {fix}";
        }
    }

    /// <summary>What kind of BLAS a libblas.so.3 path is (Debian's alternatives layout).</summary>
    public static BlasKind Classify(string? library)
    {
        if (string.IsNullOrEmpty(library)) return BlasKind.Unknown;
        var path = library.ToLowerInvariant();
        if (path.Contains("openblas-openmp", StringComparison.Ordinal)) return BlasKind.OpenBlasOpenMp;
        if (path.Contains("openblas-pthread", StringComparison.Ordinal)) return BlasKind.OpenBlasPthread;
        if (path.Contains("openblas-serial", StringComparison.Ordinal)) return BlasKind.OpenBlasSerial;
        if (path.Contains("/blas/libblas.so", StringComparison.Ordinal)) return BlasKind.Reference;
        return BlasKind.Other;
    }

    /// <summary>Best-of-3 GFLOP/s of a float32 GEMM of size <paramref name="n"/>³ on the calling thread.</summary>
    public static double MeasureGemmGflops(int n = 384)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 16);
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

    /// <summary>
    /// The libblas.so.3 the process mapped (from /proc/self/maps, symlinks resolved), which is the one
    /// whose sgemm libtorch calls; failing that, any mapped OpenBLAS; null when none is mapped.
    /// </summary>
    public static string? LoadedBlasLibrary()
    {
        List<string> paths;
        try
        {
            paths = File.ReadLines("/proc/self/maps")
                .Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length == 6)
                .Select(f => f[5].Trim())
                .Distinct()
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return paths.FirstOrDefault(p => Path.GetFileName(p).StartsWith("libblas.so", StringComparison.Ordinal))
               ?? paths.FirstOrDefault(p => Path.GetFileName(p).StartsWith("libopenblas", StringComparison.Ordinal));
    }
}
