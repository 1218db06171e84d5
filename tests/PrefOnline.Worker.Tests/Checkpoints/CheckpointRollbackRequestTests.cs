using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>An operator's rollback while the learner holds the store: a request the learner applies at its next boundary.</summary>
public sealed class CheckpointRollbackRequestTests
{
    [Fact]
    public async Task A_requested_rollback_blocks_commits_until_the_learner_applies_it_then_the_learner_reloads()
    {
        using var temp = new TempStore();
        using var learner = await OpenWithVersionsAsync(temp, 3);
        await learner.MarkGoodAsync(2);
        await learner.WriteAsync(Draft(4));

        var request = await CheckpointStore.RequestRollbackAsync(temp.Root, null, "reward drift on the dashboard");
        Assert.Equal(2, request.To);
        Assert.Equal(request, temp.Reader().ReadRollbackRequest().Request);

        var blocked = await Assert.ThrowsAsync<InvalidOperationException>(() => learner.WriteAsync(Draft(5)));
        Assert.Contains("ApplyRequestedRollbackAsync", blocked.Message);
        Assert.Equal(4, temp.Reader().ReadPointers().Latest);

        var applied = await learner.ApplyRequestedRollbackAsync();
        Assert.NotNull(applied);
        Assert.Equal((4L, 2L), (applied.From!.Value, applied.To));
        Assert.StartsWith("reward drift on the dashboard (requested by ", applied.Reason);
        Assert.False(File.Exists(Path.Combine(temp.Root, "rollback.request")));
        Assert.Null(await learner.ApplyRequestedRollbackAsync()); // consumed

        await Assert.ThrowsAsync<InvalidOperationException>(() => learner.WriteAsync(Draft(5))); // must reload first
        Assert.Equal(2, (await learner.LoadLatestValidAsync()).Checkpoint!.Version);
        var next = await learner.WriteAsync(Draft(5));
        Assert.Equal((5L, 2L), (next.Version, next.Parent!.Value));
        var rollback = Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Rollback);
        Assert.Contains("requested by", rollback.Reason);
    }

    [Fact]
    public async Task A_request_whose_target_went_bad_is_dropped_with_an_event_and_the_learner_carries_on()
    {
        using var temp = new TempStore();
        using var learner = await OpenWithVersionsAsync(temp, 3);
        await CheckpointStore.RequestRollbackAsync(temp.Root, 1, "test");
        FlipByte(temp.PathOf(1, "policy.safetensors"), 0);

        Assert.Null(await learner.ApplyRequestedRollbackAsync());
        Assert.False(File.Exists(Path.Combine(temp.Root, "rollback.request")));
        var refused = Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.RollbackRefused);
        Assert.Equal(1, refused.To);
        Assert.Contains("sha256 mismatch", refused.Reason);
        Assert.Equal(3, temp.Reader().ReadPointers().Latest);
        Assert.Equal(4, (await learner.WriteAsync(Draft(4))).Version); // lineage untouched
    }

    [Fact]
    public async Task A_garbled_request_file_is_dropped_with_an_event()
    {
        using var temp = new TempStore();
        using var learner = await OpenWithVersionsAsync(temp, 2);
        File.WriteAllText(Path.Combine(temp.Root, "rollback.request"), "roll back please");
        Assert.Contains("not a rollback request", temp.Reader().ReadRollbackRequest().Problem);
        Assert.Null(await learner.ApplyRequestedRollbackAsync());
        Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.RollbackRefused);
        Assert.Equal(3, (await learner.WriteAsync(Draft(3))).Version);
    }

    [Fact]
    public async Task A_request_left_for_a_learner_that_died_is_applied_when_it_restarts()
    {
        using var temp = new TempStore();
        using (var learner = await OpenWithVersionsAsync(temp, 3))
            await CheckpointStore.RequestRollbackAsync(temp.Root, 1, "test");
        using var restarted = await temp.OpenAsync();
        var resumed = await restarted.LoadLatestValidAsync();
        Assert.Equal(1, resumed.Checkpoint!.Version);
        Assert.Equal(1, temp.Reader().ReadPointers().Latest);
        Assert.Equal((4L, 1L), ((await restarted.WriteAsync(Draft(4))).Version, 1L));
    }

    [Fact]
    public async Task A_request_for_a_corrupt_or_missing_target_is_refused_up_front()
    {
        using var temp = new TempStore();
        using var learner = await OpenWithVersionsAsync(temp, 2);
        File.Delete(temp.PathOf(1, "replay.jsonl"));
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => CheckpointStore.RequestRollbackAsync(temp.Root, 1, "test"));
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => CheckpointStore.RequestRollbackAsync(temp.Root, 8, "test"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => CheckpointStore.RequestRollbackAsync(temp.Root, null, "test")); // no good yet
        Assert.False(File.Exists(Path.Combine(temp.Root, "rollback.request")));
    }
}
