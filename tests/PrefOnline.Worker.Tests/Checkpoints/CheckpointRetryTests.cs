using Polly;
using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointRetryTests
{
    /// <summary>The production strategy (same predicate, same backoff shape) with zero delays and an observer.</summary>
    private static ResiliencePipeline ObservedPipeline(int retryCount, List<Exception> retried)
    {
        var options = new CheckpointOptions { Directory = "unused", RetryCount = retryCount, RetryBaseDelay = TimeSpan.Zero, RetryMaxDelay = TimeSpan.Zero };
        var strategy = CheckpointRetry.CreateStrategyOptions(options);
        var log = strategy.OnRetry!;
        strategy.OnRetry = arguments =>
        {
            lock (retried) retried.Add(arguments.Outcome.Exception!);
            return log(arguments);
        };
        return new ResiliencePipelineBuilder().AddRetry(strategy).Build();
    }

    [Fact]
    public async Task Transient_IO_failures_are_retried_and_the_write_succeeds_with_every_writer_rerun()
    {
        using var temp = new TempStore();
        var retried = new List<Exception>();
        using var store = await temp.OpenAsync(pipeline: ObservedPipeline(3, retried));
        store.StartNewLineage();
        var calls = 0;
        var written = await store.WriteAsync(new CheckpointDraft()
            .AddBytes("a.bin", [1, 2])
            .AddFile("b.bin", async (stream, ct) =>
            {
                calls++;
                await stream.WriteAsync(new byte[] { 3, 4 }, ct);
                if (calls <= 2) throw new IOException("simulated EIO from a flaky volume");
            }));
        Assert.Equal(3, calls);
        Assert.Equal(2, retried.Count);
        Assert.All(retried, e => Assert.Equal("simulated EIO from a flaky volume", e.Message));
        Assert.Equal(1, written.Version);
        Assert.True((await temp.Reader().VerifyAsync(1)).IsValid);
        Assert.Empty(temp.Reader().FindLeftovers()); // each failed attempt cleaned its temp directory
    }

    [Fact]
    public async Task When_retries_run_out_the_error_names_version_attempts_and_latest_and_nothing_changes()
    {
        using var temp = new TempStore();
        var retried = new List<Exception>();
        using var store = await OpenWithVersionsAsync(temp, 1);
        using var flaky = await ReopenWithPipelineAsync(temp, store, ObservedPipeline(2, retried));
        var failure = await Assert.ThrowsAsync<CheckpointWriteException>(() => flaky.WriteAsync(new CheckpointDraft()
            .AddFileAt("a.bin", (_, _) => throw new IOException("No space left on device"))));
        Assert.Equal(2, retried.Count);
        Assert.Equal((2L, 1L, 3), (failure.Version, failure.LatestVersion!.Value, failure.Attempts));
        Assert.Equal("checkpoint v000002 could not be written to " + temp.Root + " after 3 attempt(s); latest is still v000001: No space left on device", failure.Message);
        Assert.IsType<IOException>(failure.InnerException);
        Assert.Equal(1, temp.Reader().ReadPointers().Latest);
        Assert.Equal([1L], temp.Reader().ListVersions().ToArray());
        Assert.Empty(temp.Reader().FindLeftovers());

        // The failed number is not reused: the next write is v3, still with parent v1.
        var next = await flaky.WriteAsync(Draft(3));
        Assert.Equal((3L, 1L), (next.Version, next.Parent!.Value));
    }

    [Fact]
    public async Task Non_transient_failures_are_not_retried()
    {
        using var temp = new TempStore();
        var retried = new List<Exception>();
        using var store = await temp.OpenAsync(pipeline: ObservedPipeline(3, retried));
        store.StartNewLineage();
        var calls = 0;
        await Assert.ThrowsAsync<FormatException>(() => store.WriteAsync(new CheckpointDraft()
            .AddFileAt("a.bin", (_, _) =>
            {
                calls++;
                throw new FormatException("a bug in the serializer");
            })));
        await Assert.ThrowsAsync<CheckpointWriteException>(() => store.WriteAsync(new CheckpointDraft()
            .AddFileAt("b.bin", (_, _) =>
            {
                calls++;
                throw new FileNotFoundException("a source that is not there will not appear");
            })));
        Assert.Equal(2, calls);
        Assert.Empty(retried);
    }

    [Fact]
    public async Task Corruption_is_not_retried_while_verifying()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        FlipByte(temp.PathOf(1, "policy.safetensors"), 0);
        var retried = new List<Exception>();
        var reader = new CheckpointReader(temp.Root, ObservedPipeline(3, retried));
        Assert.False((await reader.VerifyAsync(1)).IsValid);
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => reader.LoadAsync(1));
        Assert.Empty(retried);
    }

    [Fact]
    public void The_transient_predicate_separates_faults_from_facts()
    {
        Assert.True(CheckpointRetry.IsTransient(new IOException("EIO")));
        Assert.False(CheckpointRetry.IsTransient(new FileNotFoundException()));
        Assert.False(CheckpointRetry.IsTransient(new DirectoryNotFoundException()));
        Assert.False(CheckpointRetry.IsTransient(new EndOfStreamException()));
        Assert.False(CheckpointRetry.IsTransient(new CheckpointCorruptException("/r", 1, ["x"])));
        Assert.False(CheckpointRetry.IsTransient(new CheckpointLockedException("/r", null)));
        Assert.False(CheckpointRetry.IsTransient(new InvalidOperationException()));
        Assert.False(CheckpointRetry.IsTransient(new OperationCanceledException()));
    }

    [Fact]
    public void The_default_pipeline_backs_off_exponentially_from_the_configured_delay()
    {
        var strategy = CheckpointRetry.CreateStrategyOptions(new CheckpointOptions { RetryCount = 4, RetryBaseDelay = TimeSpan.FromMilliseconds(50), RetryMaxDelay = TimeSpan.FromSeconds(2) });
        Assert.Equal(4, strategy.MaxRetryAttempts);
        Assert.Equal(DelayBackoffType.Exponential, strategy.BackoffType);
        Assert.True(strategy.UseJitter);
        Assert.Equal(TimeSpan.FromMilliseconds(50), strategy.Delay);
        Assert.Equal(TimeSpan.FromSeconds(2), strategy.MaxDelay);
        Assert.Same(ResiliencePipeline.Empty, CheckpointRetry.CreatePipeline(new CheckpointOptions { RetryCount = 0 }));
    }

    private static async Task<CheckpointStore> ReopenWithPipelineAsync(TempStore temp, CheckpointStore open, ResiliencePipeline pipeline)
    {
        open.Dispose();
        var store = await temp.OpenAsync(pipeline: pipeline);
        await store.LoadLatestValidAsync();
        return store;
    }
}
