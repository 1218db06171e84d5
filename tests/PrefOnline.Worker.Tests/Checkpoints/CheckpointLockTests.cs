using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointLockTests
{
    [Fact]
    public async Task A_second_writer_is_refused_with_the_holder_named_until_the_first_closes()
    {
        using var temp = new TempStore();
        var first = await temp.OpenAsync();
        var refused = await Assert.ThrowsAsync<CheckpointLockedException>(() => temp.OpenAsync());
        Assert.Contains($"pid {Environment.ProcessId}", refused.Message);
        Assert.Contains(temp.Root, refused.Message);
        Assert.Contains("only one learner", refused.Message);

        // Readers need no lock.
        Assert.Empty(temp.Reader().ListVersions());

        first.Dispose();
        using var second = await temp.OpenAsync();
        second.StartNewLineage();
        Assert.Equal(1, (await second.WriteAsync(Draft(1))).Version);
    }

    [Fact]
    public async Task A_refused_writer_removes_nothing_from_the_running_writers_store()
    {
        using var temp = new TempStore();
        using var first = await temp.OpenAsync();
        var inFlight = Path.Combine(temp.Root, ".tmp-v000001-inflight");
        Directory.CreateDirectory(inFlight); // what the running writer is writing right now
        await Assert.ThrowsAsync<CheckpointLockedException>(() => temp.OpenAsync());
        Assert.True(Directory.Exists(inFlight));
    }

    [Fact]
    public async Task Disposing_during_a_write_keeps_the_lock_until_the_write_has_committed()
    {
        using var temp = new TempStore();
        var store = await temp.OpenAsync();
        store.StartNewLineage();
        var writerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseWriter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var write = store.WriteAsync(new CheckpointDraft().AddFile("a.bin", async (stream, ct) =>
        {
            writerStarted.SetResult();
            await releaseWriter.Task.WaitAsync(ct);
            await stream.WriteAsync(new byte[] { 1 }, ct);
        }));
        await writerStarted.Task;
        var dispose = store.DisposeAsync().AsTask();
        Assert.False(dispose.IsCompleted);
        await Assert.ThrowsAsync<CheckpointLockedException>(() => temp.OpenAsync()); // still held mid-write

        releaseWriter.SetResult();
        Assert.Equal(1, (await write).Version);
        await dispose;
        using var next = await temp.OpenAsync();
        Assert.Equal(1, (await next.LoadLatestValidAsync()).Checkpoint!.Version);
    }

    [Fact]
    public async Task Operations_on_a_disposed_store_throw_ObjectDisposedException()
    {
        using var temp = new TempStore();
        var store = await temp.OpenAsync();
        store.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.WriteAsync(Draft(1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.LoadLatestValidAsync());
        Assert.Throws<ObjectDisposedException>(store.StartNewLineage);
    }
}
