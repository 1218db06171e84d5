using System.Collections.Concurrent;
using TorchSharp;

namespace PrefOnline.Tensors;

/// <summary>
/// The one OS thread that runs tensor work. libtorch keeps grad mode and inference mode per thread,
/// and TorchSharp's dispose scopes are thread-bound, so work that hops threads (as code after an
/// <c>await</c> does) would silently lose them. Callers hand work here and
/// await the result; the work itself is synchronous and never awaits.
/// </summary>
/// <remarks>
/// Work runs one item at a time in submission order. Cancelling a token cancels the item at once if
/// it has not started (it then never runs); an item that has started runs to the end and its result
/// is delivered, so a tensor it returns is never orphaned. An exception thrown by the work faults the
/// returned task (on the caller's side); the thread itself keeps serving. Disposing drains the queue.
/// </remarks>
public sealed class TensorThread : IDisposable
{
    [ThreadStatic] private static TensorThread? current;

    private readonly BlockingCollection<WorkItem> queue = new();
    private readonly Thread thread;
    private volatile bool disposed;
    private Exception? startupError;

    /// <param name="name">Thread name, shown in dumps.</param>
    /// <param name="intraOpThreads">libtorch's intra-op threads for work on this thread (applied by
    /// <see cref="TorchEngine.SetThreads"/> when it starts); 0 = the core count.</param>
    public TensorThread(string name = "tensor", int intraOpThreads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(intraOpThreads);
        IntraOpThreads = intraOpThreads > 0 ? intraOpThreads : Environment.ProcessorCount;
        thread = new Thread(Loop) { Name = name, IsBackground = true };
        thread.Start();
    }

    /// <summary>The tensor thread the caller is running on, or null when it is on none.</summary>
    public static TensorThread? Current => current;

    public int IntraOpThreads { get; }

    public string Name => thread.Name ?? "tensor";

    public bool IsCurrentThread => Thread.CurrentThread == thread;

    /// <summary>Work items waiting to run (a health signal: a stuck thread shows a growing queue).</summary>
    public int QueueLength => disposed ? 0 : queue.Count;

    /// <summary>Throws unless called on this tensor thread (for code that must never run elsewhere).</summary>
    public void VerifyAccess()
    {
        if (!IsCurrentThread)
            throw new InvalidOperationException($"this must run on tensor thread '{Name}', not on thread {Environment.CurrentManagedThreadId}");
    }

    /// <summary>Runs <paramref name="work"/> on the tensor thread and completes with its result or exception.</summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<T>(cancellationToken);
        var item = new WorkItem<T>(work, cancellationToken);
        if (disposed) return Task.FromException<T>(Stopped());
        try
        {
            queue.Add(item, CancellationToken.None);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            // Dispose raced with this call.
            item.Dispose();
            return Task.FromException<T>(Stopped());
        }
        return item.Task;
    }

    public Task RunAsync(Action work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return RunAsync(() =>
        {
            work();
            return true;
        }, cancellationToken);
    }

    private ObjectDisposedException Stopped() => new(nameof(TensorThread), $"tensor thread '{Name}' has stopped");

    private void Loop()
    {
        current = this;
        try
        {
            // Before the first item: the native library is loaded (a broken install fails every item with
            // one clear message) and libtorch uses the configured number of threads.
            TorchEngine.EnsureLoaded();
            TorchEngine.SetThreads(IntraOpThreads);
        }
        catch (Exception e)
        {
            // Typically the native library could not be loaded. Every item fails with this instead of
            // the process dying of an unhandled exception on a background thread.
            startupError = e;
        }
        foreach (var item in queue.GetConsumingEnumerable())
        {
            if (startupError is not null) item.Fail(new InvalidOperationException($"tensor thread '{Name}' could not start: {startupError.Message}", startupError));
            else item.Execute();
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        queue.CompleteAdding();
        // From the tensor thread itself (inside a work item) the loop is still running: it ends after
        // this item, and the queue is left to the GC.
        if (IsCurrentThread) return;
        thread.Join();
        queue.Dispose();
    }

    private abstract class WorkItem : IDisposable
    {
        public abstract void Execute();

        public abstract void Fail(Exception error);

        public abstract void Dispose();
    }

    private sealed class WorkItem<T> : WorkItem
    {
        private const int Queued = 0, Started = 1, Cancelled = 2;

        private readonly Func<T> work;
        private readonly CancellationToken cancellationToken;
        private readonly TaskCompletionSource<T> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration registration;
        private int state = Queued;

        public WorkItem(Func<T> work, CancellationToken cancellationToken)
        {
            this.work = work;
            this.cancellationToken = cancellationToken;
            if (cancellationToken.CanBeCanceled) registration = cancellationToken.Register(static s => ((WorkItem<T>)s!).CancelIfQueued(), this);
        }

        public Task<T> Task => completion.Task;

        private void CancelIfQueued()
        {
            if (Interlocked.CompareExchange(ref state, Cancelled, Queued) == Queued) completion.TrySetCanceled(cancellationToken);
        }

        public override void Execute()
        {
            if (Interlocked.CompareExchange(ref state, Started, Queued) != Queued) return;  // cancelled while queued
            registration.Dispose();
            try
            {
                completion.TrySetResult(work());
            }
            catch (OperationCanceledException e) when (e.CancellationToken == cancellationToken && cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
        }

        public override void Fail(Exception error)
        {
            if (Interlocked.CompareExchange(ref state, Started, Queued) != Queued) return;
            registration.Dispose();
            completion.TrySetException(error);
        }

        public override void Dispose() => registration.Dispose();
    }
}
