namespace PrefOnline.Torch.Tests;

public class BlasProbeTests
{
    [Theory]
    [InlineData("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3", BlasKind.OpenBlasOpenMp)]
    [InlineData("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", BlasKind.OpenBlasPthread)]
    [InlineData("/usr/lib/x86_64-linux-gnu/openblas-serial/libblas.so.3", BlasKind.OpenBlasSerial)]
    [InlineData("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", BlasKind.Reference)]
    [InlineData("/opt/intel/mkl/lib/libblas.so.3", BlasKind.Other)]
    [InlineData(null, BlasKind.Unknown)]
    public void Classifies_debian_blas_alternatives(string? path, BlasKind kind) => Assert.Equal(kind, BlasProbe.Classify(path));

    [Fact]
    public void Reference_blas_gets_a_warning_naming_the_package_or_the_alternative_to_select()
    {
        var notInstalled = BlasProbe.WarningFor(6.9, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", BlasKind.Reference, openBlasOpenMpInstalled: false);
        Assert.Contains("reference BLAS", notInstalled);
        Assert.Contains("6.9 GFLOP/s", notInstalled);
        Assert.Contains("apt-get install -y --no-install-recommends libopenblas0-openmp", notInstalled);

        var installed = BlasProbe.WarningFor(6.9, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", BlasKind.Reference, openBlasOpenMpInstalled: true);
        Assert.Contains("update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3", installed);

        Assert.Contains("ignores the configured thread count",
            BlasProbe.WarningFor(150, "/x/openblas-pthread/libblas.so.3", BlasKind.OpenBlasPthread, false));
        Assert.Contains("slow BLAS", BlasProbe.WarningFor(5, "/x/libblas.so.3", BlasKind.Other, false));
        Assert.Contains("slow BLAS", BlasProbe.WarningFor(5, null, BlasKind.Unknown, false));
        Assert.Null(BlasProbe.WarningFor(160, "/x/libblas.so.3", BlasKind.Other, false));
        // OpenBLAS measured slow is a busy machine, not a wrong install: no misleading advice.
        Assert.Null(BlasProbe.WarningFor(5, "/x/openblas-openmp/libblas.so.3", BlasKind.OpenBlasOpenMp, false));
    }

    [Fact]
    public void This_machine_uses_openblas_openmp_and_the_probe_measures_a_real_speed()
    {
        var result = BlasProbe.Check();
        Assert.Equal(BlasKind.OpenBlasOpenMp, result.Kind);  // ENVIRONMENT.md: dev.sh selects it
        Assert.EndsWith("libblas.so.3", result.Library);
        Assert.True(result.IsHealthy, result.Warning);
        Assert.True(result.Gflops > 0.5 && double.IsFinite(result.Gflops), $"{result.Gflops} GFLOP/s");
    }
}
