using PrefOnline.Tensors;

namespace PrefOnline.Benchmarks;

/// <summary>
/// One sub-benchmark of <c>prefonline bench</c> (torch, train, generate, ingest): a named group of
/// <see cref="BenchmarkCase"/>s, each measured on our side and, interleaved round by round, on the
/// PyTorch reference. To add one: implement this in a file of its own in this folder and add one
/// <c>yield return</c> line to <see cref="BenchmarkRegistry"/>.
/// </summary>
public interface IBenchmark
{
    /// <summary>The name on the command line (<c>prefonline bench NAME</c>); lower case, no spaces.</summary>
    string Name { get; }

    /// <summary>One line for <c>--help</c> and the report.</summary>
    string Description { get; }

    /// <summary>
    /// Python source for the reference side, executed once by the <see cref="PythonReferenceSession"/>
    /// with <c>torch</c> already imported. For each case whose <see cref="BenchmarkCase.Reference"/> names
    /// function F, it defines <c>setup_F(args)</c> that builds the same model/data as the C# side and
    /// returns a zero-argument round function (timed by the harness, or returning its own seconds).
    /// Null when no case has a PyTorch reference.
    /// </summary>
    string? ReferenceSource { get; }

    /// <summary>
    /// Builds the cases (models, data, ...). Tensor work must run on <see cref="BenchmarkContext.TensorThread"/>.
    /// The runner disposes each case after measuring it.
    /// </summary>
    Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken);
}
