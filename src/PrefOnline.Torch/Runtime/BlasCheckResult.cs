namespace PrefOnline.Torch;

/// <summary>The outcome of <see cref="BlasProbe.Check"/>: the measured speed, the library, and a
/// warning to log (null when the set-up is the fast one).</summary>
/// <param name="Gflops">Best-of-3 float32 GEMM speed on the calling thread.</param>
/// <param name="Library">Path of the mapped libblas.so.3 (symlinks resolved), if any.</param>
/// <param name="Kind">What that library is.</param>
/// <param name="Warning">One line naming the problem and the command that fixes it; null when fine.</param>
public sealed record BlasCheckResult(double Gflops, string? Library, BlasKind Kind, string? Warning)
{
    public bool IsHealthy => Warning is null;
}
