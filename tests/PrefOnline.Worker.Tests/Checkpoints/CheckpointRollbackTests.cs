using Polly;
using Polly.Simmy;
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

    [Fact]
    public async Task A_rollback_below_good_moves_good_back_with_latest_so_a_later_rollback_to_good_never_returns_to_the_abandoned_line()
    {
        // Issue 11 item 3: an operator (or offline) rollback below `good` left `good` ahead of `latest`; the next
        // guardrail rollback (to `good`) then rolled forward to the abandoned versions.
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 5);
        await store.MarkGoodAsync(4);

        var outcome = await store.RollbackAsync(2, "operator: bad batch of labels after v2");
        Assert.Equal((5L, 2L, 4L, 2L), (outcome.From!.Value, outcome.To, outcome.GoodFrom!.Value, outcome.GoodTo!.Value));
        Assert.Equal((2L, 2L), (temp.Reader().ReadPointers().Latest!.Value, temp.Reader().ReadPointers().Good!.Value));
        Assert.Null(temp.Reader().ReadRollbackRequest().Request); // the journal is gone once both pointers moved

        // Audited: good's move first (it moves first), then the rollback.
        var events = temp.Reader().ReadEvents().Where(e => e.Kind is CheckpointEventKind.MarkGood or CheckpointEventKind.Rollback).TakeLast(2).ToList();
        Assert.Equal((CheckpointEventKind.MarkGood, 4L, 2L), (events[0].Kind, events[0].From!.Value, events[0].To!.Value));
        Assert.Contains("moved back with latest by the rollback to v000002", events[0].Reason);
        Assert.Equal((CheckpointEventKind.Rollback, 5L, 2L), (events[1].Kind, events[1].From!.Value, events[1].To!.Value));
        Assert.Equal<long>([3L, 4L, 5L], (await temp.Reader().AbandonedVersionsAsync()).Order().ToList());

        // The new line continues from v2; a guardrail rollback to `good` stays on it.
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(6));
        await store.WriteAsync(Draft(7));
        var guardrail = await store.RollbackAsync(null, "guardrail: drift");
        Assert.Equal(2, guardrail.To);
        Assert.Equal(2, temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task A_rollback_to_a_version_after_good_leaves_good_and_an_abandoned_version_never_becomes_good()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 5);
        await store.MarkGoodAsync(2);
        var outcome = await store.RollbackAsync(3, "operator");
        Assert.Equal((2L, 2L), (outcome.GoodFrom!.Value, outcome.GoodTo!.Value)); // good is an ancestor of the target: stays
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(6)); // parent v3

        // v4 and v5 were abandoned: newer than good by number, but never a promotion target.
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => store.MarkGoodAsync(5));
        Assert.Contains("is not on the line of latest (v000006)", refused.Message);
        await store.MarkGoodAsync(6);
        Assert.Equal(6, temp.Reader().ReadPointers().Good);
    }

    [Fact]
    public async Task A_crash_between_the_two_pointer_moves_is_completed_by_the_next_open()
    {
        using var temp = new TempStore();
        using (var setup = await OpenWithVersionsAsync(temp, 5)) await setup.MarkGoodAsync(4);

        // The third pointer write of the rollback (journal, good, latest) fails for good: the process "dies" there.
        var pointerWrites = 0;
        var dying = new ResiliencePipelineBuilder().AddChaosFault(new Polly.Simmy.Fault.ChaosFaultStrategyOptions
        {
            InjectionRate = 1,
            EnabledGenerator = args => ValueTask.FromResult(args.Context.OperationKey == CheckpointIoOperations.MovePointer && Interlocked.Increment(ref pointerWrites) == 3),
            FaultGenerator = _ => ValueTask.FromResult<Exception?>(new UnauthorizedAccessException("simulated crash")),
        }).Build();
        using (var store = await temp.OpenAsync(pipeline: dying))
        {
            await store.LoadLatestValidAsync();
            await Assert.ThrowsAsync<UnauthorizedAccessException>(() => store.RollbackAsync(2, "operator"));
        }
        // In between: good already moved (never ahead of latest's line), latest not yet, the journal names the target.
        var between = temp.Reader().ReadPointers();
        Assert.Equal((5L, 2L), (between.Latest!.Value, between.Good!.Value));
        Assert.Equal(2, temp.Reader().ReadRollbackRequest().Request!.To);

        using (var reopened = await temp.OpenAsync())
        {
            var resumed = await reopened.LoadLatestValidAsync();
            Assert.Equal(2, resumed.Checkpoint!.Version);
        }
        Assert.Equal((2L, 2L), (temp.Reader().ReadPointers().Latest!.Value, temp.Reader().ReadPointers().Good!.Value));
        Assert.Null(temp.Reader().ReadRollbackRequest().Request);
    }

    [Fact]
    public async Task An_operators_requested_rollback_below_good_moves_good_too()
    {
        using var temp = new TempStore();
        using var learner = await OpenWithVersionsAsync(temp, 5);
        await learner.MarkGoodAsync(4);
        await CheckpointStore.RequestRollbackAsync(temp.Root, 2, "operator");
        var applied = await learner.ApplyRequestedRollbackAsync();
        Assert.Equal((2L, 4L, 2L), (applied!.To, applied.GoodFrom!.Value, applied.GoodTo!.Value));
        Assert.Equal((2L, 2L), (temp.Reader().ReadPointers().Latest!.Value, temp.Reader().ReadPointers().Good!.Value));
    }
}
