using PrefOnline.Tensors;

namespace PrefOnline.Benchmarks;

/// <summary>What every benchmark gets: the thread count both sides use, a tensor thread configured
/// with it, the size mode, and where progress lines go.</summary>
public sealed class BenchmarkContext : IDisposable
{
    private readonly Lazy<TensorThread> tensorThread;

    public BenchmarkContext(int threads, bool quick, TextWriter log)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        Quick = quick;
        Log = log;
        tensorThread = new Lazy<TensorThread>(() => new TensorThread("bench-tensor", threads));
    }

    /// <summary>libtorch intra-op threads on both sides (the reference gets torch.set_num_threads(Threads)).</summary>
    public int Threads { get; }

    /// <summary>Smaller sizes and fewer iterations: a smoke run (tests, CI), not a measurement.</summary>
    public bool Quick { get; }

    /// <summary>Progress and diagnostics (not the results table).</summary>
    public TextWriter Log { get; }

    /// <summary>The one thread our side's tensor work runs on (created on first use, with <see cref="Threads"/>).</summary>
    public TensorThread TensorThread => tensorThread.Value;

    /// <summary>Whether any benchmark used <see cref="TensorThread"/> (then libtorch facts go into the report).</summary>
    public bool HasTensorThread => tensorThread.IsValueCreated;

    public void Dispose()
    {
        if (tensorThread.IsValueCreated) tensorThread.Value.Dispose();
    }
}
