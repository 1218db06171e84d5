using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Validation;

public sealed class DuplicateIdWindowTests
{
    private static readonly TopicPartitionId Partition = new("t", 0);

    [Fact]
    public void The_oldest_ids_are_forgotten_beyond_capacity()
    {
        var window = new DuplicateIdWindow(capacity: 3, ttl: TimeSpan.FromHours(1));
        foreach (var id in new[] { "a", "b", "c", "d" }) Assert.True(window.TryRegister(id, null, out _));
        Assert.Equal(3, window.Count);
        Assert.True(window.TryRegister("a", null, out _));   // forgotten: accepted again
        Assert.False(window.TryRegister("d", null, out _));  // still remembered
    }

    [Fact]
    public void Ids_are_forgotten_after_the_ttl()
    {
        var clock = new ManualTimeProvider();
        var window = new DuplicateIdWindow(100, TimeSpan.FromMinutes(10), clock);
        Assert.True(window.TryRegister("a", null, out _));
        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.False(window.TryRegister("a", null, out _));
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True(window.TryRegister("a", null, out _));
    }

    [Fact]
    public void The_same_position_is_a_redelivery_and_reports_where_a_duplicate_was_first_seen()
    {
        var window = new DuplicateIdWindow(10, TimeSpan.FromHours(1));
        var first = new RecordPosition(Partition, 4);
        Assert.True(window.TryRegister("a", first, out _));
        Assert.True(window.TryRegister("a", first, out _));
        Assert.False(window.TryRegister("a", new RecordPosition(Partition, 8), out var seen));
        Assert.Equal(first, seen);
        Assert.False(window.TryRegister("a", null, out _));
    }

    [Fact]
    public void A_restored_window_refuses_what_the_saved_one_refused_and_accepts_redeliveries_at_the_same_position()
    {
        // Issue 11 item 5: exactly-once across restarts includes duplicates. The window saved with a checkpoint
        // and given to a new process must keep refusing an id at a new position, and must not refuse the same
        // record read again at its own position (a redelivery after the restart is not a duplicate).
        var clock = new ManualTimeProvider();
        var before = new DuplicateIdWindow(100, TimeSpan.FromMinutes(60), clock);
        Assert.True(before.TryRegister("label-1", new RecordPosition(Partition, 10), out _));
        Assert.True(before.TryRegister("label-2", null, out _));
        clock.Advance(TimeSpan.FromMinutes(20));
        Assert.True(before.TryRegister("label-3", new RecordPosition(Partition, 11), out _));
        var saved = before.Snapshot();
        Assert.Equal(["label-1", "label-2", "label-3"], saved.Select(e => e.Id));

        var afterClock = new ManualTimeProvider(clock.GetUtcNow() + TimeSpan.FromMinutes(5)); // a restart takes five minutes
        var after = new DuplicateIdWindow(100, TimeSpan.FromMinutes(60), afterClock);
        Assert.Equal(3, after.Restore(saved));
        Assert.True(after.TryRegister("label-1", new RecordPosition(Partition, 10), out _));      // redelivery
        Assert.False(after.TryRegister("label-1", new RecordPosition(Partition, 20), out var first)); // duplicate
        Assert.Equal(new RecordPosition(Partition, 10), first);
        Assert.False(after.TryRegister("label-2", new RecordPosition(Partition, 21), out _));     // position unknown: any repeat

        // Ages carry over: label-1 was seen 25 minutes ago, so it expires 35 minutes after the restart, label-3 20 later.
        afterClock.Advance(TimeSpan.FromMinutes(35));
        Assert.True(after.TryRegister("label-1", new RecordPosition(Partition, 22), out _));
        Assert.False(after.TryRegister("label-3", new RecordPosition(Partition, 23), out _));
    }

    [Fact]
    public void Restoring_drops_expired_entries_keeps_the_newest_within_capacity_and_the_current_entry_of_a_known_id()
    {
        var clock = new ManualTimeProvider();
        var window = new DuplicateIdWindow(3, TimeSpan.FromMinutes(10), clock);
        Assert.True(window.TryRegister("now", new RecordPosition(Partition, 50), out _));
        var at = clock.GetUtcNow();
        var restored = window.Restore([
            new SeenId("expired", new RecordPosition(Partition, 1), at - TimeSpan.FromMinutes(11)),
            new SeenId("old", new RecordPosition(Partition, 2), at - TimeSpan.FromMinutes(5)),
            new SeenId("older", new RecordPosition(Partition, 3), at - TimeSpan.FromMinutes(6)),
            new SeenId("oldest", new RecordPosition(Partition, 4), at - TimeSpan.FromMinutes(7)),
            new SeenId("now", new RecordPosition(Partition, 99), at - TimeSpan.FromMinutes(1)),
        ]);
        Assert.Equal(2, restored); // "oldest" did not fit
        Assert.Equal(["older", "old", "now"], window.Snapshot().Select(e => e.Id)); // capacity 3, oldest first
        Assert.True(window.TryRegister("now", new RecordPosition(Partition, 50), out _)); // its own entry stayed
    }
}
