using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests;

public class TensorThreadTests
{
    [Fact]
    public async Task All_work_runs_on_one_thread_with_the_configured_settings()
    {
        using var thread = new TensorThread("test-tensor", intraOpThreads: 1);
        var ids = new HashSet<int>();
        for (var i = 0; i < 20; i++)
            ids.Add(await thread.RunAsync(() => Environment.CurrentManagedThreadId));
        Assert.Single(ids);
        Assert.NotEqual(Environment.CurrentManagedThreadId, ids.Single());

        var (name, threads, grad, current, isCurrent) = await thread.RunAsync(
            () => (Thread.CurrentThread.Name, TorchEngine.Threads, is_grad_enabled(), TensorThread.Current, thread.IsCurrentThread));
        Assert.Equal("test-tensor", name);
        Assert.Equal(1, threads);  // libtorch's per-thread setting, read on the thread itself
        Assert.True(grad);
        Assert.Same(thread, current);
        Assert.True(isCurrent);
        Assert.False(thread.IsCurrentThread);
        Assert.Throws<InvalidOperationException>(thread.VerifyAccess);
        await thread.RunAsync(thread.VerifyAccess);

        using var two = new TensorThread("two", intraOpThreads: 2);
        Assert.Equal(2, await two.RunAsync(() => TorchEngine.Threads));
        Assert.Equal(1, await thread.RunAsync(() => TorchEngine.Threads));  // each thread keeps its own
    }

    [Fact]
    public async Task Thread_local_state_persists_between_items_but_not_across_threads()
    {
        using var thread = new TensorThread("state", 1);
        // Grad mode set in one item is still set in the next (same OS thread), unlike across an await hop.
        var scope = await thread.RunAsync(no_grad);
        Assert.False(await thread.RunAsync(is_grad_enabled));
        Assert.True(is_grad_enabled());  // the caller's thread is unaffected
        await thread.RunAsync(scope.Dispose);
        Assert.True(await thread.RunAsync(is_grad_enabled));
    }

    [Fact]
    public async Task Exceptions_propagate_to_the_caller_and_the_thread_keeps_serving()
    {
        using var thread = new TensorThread("errors", 1);
        var e = await Assert.ThrowsAsync<ExternalException>(() => thread.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            return zeros(2, 3).mm(zeros(4, 5)).MoveToOuterDisposeScope();
        }));
        Assert.Contains("cannot be multiplied", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => thread.RunAsync(() => throw new ArgumentException("plain")));
        Assert.Equal(6.0, await thread.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            return ones(2, 3).sum().ToDouble();
        }));
    }

    [Fact]
    public async Task Cancelling_a_queued_item_cancels_it_at_once_and_it_never_runs()
    {
        using var thread = new TensorThread("cancel", 1);
        using var release = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        var blocker = thread.RunAsync(() =>
        {
            started.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        });
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));

        using var cts = new CancellationTokenSource();
        var ran = false;
        var queued = thread.RunAsync(() => ran = true, cts.Token);
        Assert.Equal(1, thread.QueueLength);
        cts.Cancel();
        // Cancelled while the thread is still busy: the caller is not kept waiting.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        release.Set();
        await blocker;
        await thread.RunAsync(() => { });  // everything queued before has been processed
        Assert.False(ran);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => thread.RunAsync(() => 1, new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task A_started_item_runs_to_the_end_and_delivers_its_result_even_if_cancelled()
    {
        using var thread = new TensorThread("started", 1);
        using var cts = new CancellationTokenSource();
        using var inside = new ManualResetEventSlim();
        using var proceed = new ManualResetEventSlim();
        var task = thread.RunAsync(() =>
        {
            inside.Set();
            proceed.Wait(TimeSpan.FromSeconds(30));
            return ones(2);  // a native result must never be orphaned by a late cancellation
        }, cts.Token);
        Assert.True(inside.Wait(TimeSpan.FromSeconds(30)));
        cts.Cancel();
        proceed.Set();
        using var result = await task;
        Assert.Equal(new float[] { 1, 1 }, result.data<float>().ToArray());
    }

    [Fact]
    public async Task Work_that_observes_its_token_ends_cancelled()
    {
        using var thread = new TensorThread("observe", 1);
        using var cts = new CancellationTokenSource();
        var task = thread.RunAsync(() =>
        {
            cts.Cancel();
            cts.Token.ThrowIfCancellationRequested();
            return 0;
        }, cts.Token);
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.True(task.IsCanceled);
        Assert.Equal(cts.Token, e.CancellationToken);
    }

    [Fact]
    public async Task Dispose_drains_the_queue_and_later_work_is_refused()
    {
        var thread = new TensorThread("dispose", 1);
        var results = Enumerable.Range(0, 10).Select(i => thread.RunAsync(() => i * i)).ToList();
        thread.Dispose();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * i), await Task.WhenAll(results));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => thread.RunAsync(() => 1));
        thread.Dispose();  // twice is fine
    }

    [Fact]
    public async Task Disposing_from_inside_a_work_item_does_not_deadlock()
    {
        var thread = new TensorThread("self-dispose", 1);
        await thread.RunAsync(thread.Dispose);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => thread.RunAsync(() => 1));
    }
}
