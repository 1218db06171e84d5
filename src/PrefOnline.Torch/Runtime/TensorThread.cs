using System.Collections.Concurrent;

namespace PrefOnline.Torch;

/// <summary>
/// The one OS thread that runs tensor work. libtorch keeps grad mode, the OpenMP thread count and the
/// shim's last error per thread, and <see cref="DisposeScope"/>s are thread-bound, so work that hops
/// threads (as code after an <c>await</c> does) would silently lose them. Callers hand work here and
/// await the result; the work itself is synchronous and never awaits.
/// </summary>
public sealed class TensorThread : IDisposable
{
    private readonly BlockingCollection<Action> queue = new();
    private readonly Thread thread;

    /// <param name="name">Thread name, shown in dumps.</param>
    /// <param name="intraOpThreads">libtorch intra-op threads (OpenMP) for this thread; usually the core count.</param>
    public TensorThread(string name = "tensor", int intraOpThreads = 0)
    {
        IntraOpThreads = intraOpThreads > 0 ? intraOpThreads : Environment.ProcessorCount;
        thread = new Thread(Loop) { Name = name, IsBackground = true };
        thread.Start();
    }

    public int IntraOpThreads { get; }

    public bool IsCurrentThread => Thread.CurrentThread == thread;

    /// <summary>Work items waiting to run (a health signal: a stuck thread shows a growing queue).</summary>
    public int QueueLength => queue.Count;

    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (cancellationToken.IsCancellationRequested)
        {
            completion.SetCanceled(cancellationToken);
            return completion.Task;
        }
        void Run()
        {
            if (cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
                return;
            }
            try
            {
                completion.TrySetResult(work());
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
        }
        try
        {
            queue.Add(Run, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            completion.TrySetException(new ObjectDisposedException(nameof(TensorThread), "the tensor thread has stopped"));
        }
        return completion.Task;
    }

    public Task RunAsync(Action work, CancellationToken cancellationToken = default) =>
        RunAsync(() =>
        {
            work();
            return true;
        }, cancellationToken);

    private void Loop()
    {
        // Before the first item, so every item sees the configured thread count.
        TorchRuntime.NumThreads = IntraOpThreads;
        foreach (var work in queue.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        queue.CompleteAdding();
        if (!IsCurrentThread) thread.Join();
        queue.Dispose();
    }
}
