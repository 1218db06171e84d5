using System.Diagnostics;
using PrefOnline.Tensors;

namespace PrefOnline.Benchmarks;

/// <summary>
/// One measurement: a round of work done by our code (<see cref="RunRoundAsync"/>) and, when
/// <see cref="Reference"/> is set, the same round done by PyTorch. Throughput is
/// <see cref="WorkPerRound"/> / seconds, in <see cref="Unit"/> (e.g. a round of 8 GEMMs of 2·1024³ flop
/// has WorkPerRound = 8·2·1024³/1e9 in "GFLOP/s"; a round of 20 train steps has 20 in "steps/s").
/// </summary>
public abstract class BenchmarkCase : IAsyncDisposable
{
    protected BenchmarkCase(string name, string unit, double workPerRound)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(unit);
        if (!(workPerRound > 0) || double.IsInfinity(workPerRound))
            throw new ArgumentOutOfRangeException(nameof(workPerRound), workPerRound, "work per round must be positive and finite");
        Name = name;
        Unit = unit;
        WorkPerRound = workPerRound;
    }

    /// <summary>Row label, e.g. "gemm 1024³ fp32".</summary>
    public string Name { get; }

    /// <summary>Throughput unit, e.g. "GFLOP/s", "steps/s", "tokens/s", "msg/s".</summary>
    public string Unit { get; }

    /// <summary>Units of work one round does (throughput = WorkPerRound / round seconds).</summary>
    public double WorkPerRound { get; }

    /// <summary>An absolute goal for our throughput (printed beside the result), if the issue sets one.</summary>
    public double? TargetThroughput { get; init; }

    /// <summary>The PyTorch side of this case, or null when there is none.</summary>
    public virtual ReferenceCase? Reference => null;

    /// <summary>
    /// A derived figure printed under the table once this case is measured (e.g. the fraction of a
    /// bound measured by an earlier case of the same run), or null. <paramref name="earlier"/> holds
    /// the results measured before this case in this run.
    /// </summary>
    public virtual string? Note(BenchmarkCaseResult result, IReadOnlyList<BenchmarkCaseResult> earlier) => null;

    /// <summary>Runs one round of our side and returns the seconds of the timed work only (set-up excluded).</summary>
    public abstract Task<double> RunRoundAsync(CancellationToken cancellationToken);

    /// <summary>Frees what the case holds (modules, tensors: on the tensor thread).</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>A case's <see cref="DisposeAsync"/> when it owns native objects: disposes <paramref name="owned"/>
    /// in order on the tensor thread that made and used them, then the case.</summary>
    protected async ValueTask DisposeOnTensorThreadAsync(TensorThread thread, params IDisposable[] owned)
    {
        ArgumentNullException.ThrowIfNull(thread);
        await thread.RunAsync(() =>
        {
            foreach (var item in owned) item.Dispose();
        }).ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Times <paramref name="round"/> on the tensor thread itself, so the hop to it is not measured.</summary>
    protected static Task<double> TimeOnTensorThreadAsync(TensorThread thread, Action round, CancellationToken cancellationToken) =>
        thread.RunAsync(() =>
        {
            var clock = Stopwatch.StartNew();
            round();
            return clock.Elapsed.TotalSeconds;
        }, cancellationToken);
}
