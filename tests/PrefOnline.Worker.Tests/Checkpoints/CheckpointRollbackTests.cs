using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointRollbackTests
{
    [Fact]
    public async Task Rollback_defaults_to_good_deletes_nothing_and_the_next_write_is_max_plus_one_with_the_target_as_parent()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 2);
        await store.MarkGoodAsync(2);
        await store.WriteAsync(Draft(3));
        await store.WriteAsync(Draft(4));

        var outcome = await store.RollbackAsync(null, "reward drift");
        Assert.Equal((4L, 2L, true, 5L), (outcome.From!.Value, outcome.To, outcome.Changed, outcome.NextVersion));
        Assert.Equal(2, temp.Reader().ReadPointers().Latest);
        Assert.Equal([1L, 2L, 3L, 4L], temp.Reader().ListVersions().ToArray());

        var resumed = await store.LoadLatestValidAsync();
        Assert.Equal(2, resumed.Checkpoint!.Version);
        Assert.Empty(resumed.Skipped);
        var next = await store.WriteAsync(Draft(5));
        Assert.Equal((5L, 2L), (next.Version, next.Parent!.Value));
    }

    [Fact]
    public async Task Rollback_is_recorded_with_time_from_to_reason_and_who()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 3)) await store.RollbackAsync(1, "bad eval on held-out prompts");
        var rollback = Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Rollback);
        Assert.Equal((3L, 1L, "bad eval on held-out prompts"), (rollback.From!.Value, rollback.To!.Value, rollback.Reason));
        Assert.Equal(Environment.ProcessId, rollback.ProcessId);
        Assert.False(string.IsNullOrEmpty(rollback.Host));
        Assert.True(rollback.Time > new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

        var line = File.ReadLines(Path.Combine(temp.Root, "events.jsonl")).Single(l => l.Contains("\"rollback\"", StringComparison.Ordinal));
        Assert.Matches("^\\{\"time\":\"2025-06-01T12:00:\\d\\d\\.250Z\",\"kind\":\"rollback\",\"from\":3,\"to\":1,\"reason\":\"bad eval on held-out prompts\",\"pid\":\\d+", line);
    }

    [Fact]
    public async Task After_a_rollback_the_writer_must_reload_before_writing()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 3);
        await store.RollbackAsync(2, "test");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(Draft(9)));
        Assert.Contains("rolled back", e.Message);
        Assert.Equal([1L, 2L, 3L], temp.Reader().ListVersions().ToArray());
    }

    [Fact]
    public async Task Rollback_to_a_corrupt_or_missing_version_is_refused_and_latest_stays()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 3);
        File.Delete(temp.PathOf(1, "optimizer.safetensors"));
        var corrupt = await Assert.ThrowsAsync<CheckpointCorruptException>(() => store.RollbackAsync(1, "test"));
        Assert.Contains("optimizer.safetensors: missing", corrupt.Message);
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => store.RollbackAsync(7, "test"));
        Assert.Equal(3, temp.Reader().ReadPointers().Latest);
        Assert.DoesNotContain(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Rollback);
        // The writer's lineage is untouched by a refused rollback.
        Assert.Equal(4, (await store.WriteAsync(Draft(4))).Version);
    }

    [Fact]
    public async Task Rollback_without_a_target_and_without_good_says_so()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 2);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.RollbackAsync(null, "test"));
        Assert.Contains("no 'good' version", e.Message);
    }

    [Fact]
    public async Task Rolling_back_to_latest_changes_nothing_and_a_rollback_can_be_undone()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 3);
        var same = await store.RollbackAsync(3, "noop");
        Assert.False(same.Changed);
        Assert.DoesNotContain(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Rollback);
        await store.RollbackAsync(1, "oops");
        var undo = await store.RollbackAsync(3, "undo");
        Assert.Equal((1L, 3L), (undo.From!.Value, undo.To));
        Assert.Equal(3, temp.Reader().ReadPointers().Latest);
    }
}
