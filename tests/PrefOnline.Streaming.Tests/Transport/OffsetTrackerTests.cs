using FsCheck;
using FsCheck.Fluent;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Tests.Transport;

public sealed class OffsetTrackerTests
{
    private static readonly TopicPartitionId P0 = new("t", 0);
    private static readonly TopicPartitionId P1 = new("t", 1);

    private static ConsumedRecord Record(TopicPartitionId partition, long offset) => new(partition, offset, null, [1], DateTimeOffset.UnixEpoch);

    [Fact]
    public void In_order_absorption_resumes_after_the_last_record()
    {
        var tracker = new OffsetTracker();
        for (var offset = 10; offset < 15; offset++) Assert.True(tracker.MarkAbsorbed(Record(P0, offset)));
        Assert.Equal(15, tracker.GetResumeOffset(P0));
        Assert.Null(tracker.GetResumeOffset(P1));
        Assert.Equal([new ResumeOffset(P0, 15)], tracker.Snapshot());
    }

    [Fact]
    public void Out_of_order_completion_never_passes_an_unabsorbed_record()
    {
        var tracker = new OffsetTracker();
        var records = Enumerable.Range(0, 5).Select(o => Record(P0, o)).ToArray();
        foreach (var r in records) Assert.True(tracker.Begin(r));
        tracker.Complete(records[1]);
        tracker.Complete(records[2]);
        Assert.Equal(0, tracker.GetResumeOffset(P0));
        tracker.Complete(records[0]);
        Assert.Equal(3, tracker.GetResumeOffset(P0));
        tracker.Complete(records[4]);
        Assert.Equal(3, tracker.GetResumeOffset(P0));
        Assert.Equal(1, tracker.InFlight);
        tracker.Complete(records[3]);
        Assert.Equal(5, tracker.GetResumeOffset(P0));
        Assert.Equal(0, tracker.InFlight);
    }

    [Fact]
    public void Replays_after_a_seek_back_are_refused_and_restored_offsets_apply()
    {
        var tracker = new OffsetTracker([new ResumeOffset(P0, 100), new ResumeOffset(P1, 7)]);
        Assert.Equal(100, tracker.GetResumeOffset(P0));
        Assert.False(tracker.Begin(Record(P0, 99)));  // absorbed before the checkpoint
        Assert.True(tracker.Begin(Record(P0, 100)));
        Assert.False(tracker.Begin(Record(P0, 100))); // in flight: a replay too
        Assert.True(tracker.IsSeen(Record(P0, 100)));
        tracker.Complete(Record(P0, 100));
        Assert.Equal([new ResumeOffset(P0, 101), new ResumeOffset(P1, 7)], tracker.Snapshot());
    }

    [Fact]
    public void Gaps_in_offsets_are_fine()
    {
        var tracker = new OffsetTracker();
        Assert.True(tracker.MarkAbsorbed(Record(P0, 3)));
        Assert.True(tracker.MarkAbsorbed(Record(P0, 9)));   // e.g. transaction markers or compaction between
        Assert.Equal(10, tracker.GetResumeOffset(P0));
    }

    [Fact]
    public void Completing_without_begin_or_twice_is_a_bug_and_throws()
    {
        var tracker = new OffsetTracker();
        Assert.Throws<InvalidOperationException>(() => tracker.Complete(Record(P0, 1)));
        tracker.Begin(Record(P0, 1));
        tracker.Begin(Record(P0, 3));
        Assert.Throws<InvalidOperationException>(() => tracker.Complete(Record(P0, 2)));
        tracker.Complete(Record(P0, 1));
        Assert.Throws<InvalidOperationException>(() => tracker.Complete(Record(P0, 1)));
    }

    [Fact]
    public void The_resume_offset_is_always_the_lowest_unabsorbed_offset_whatever_the_completion_order()
    {
        var orders = Gen.Choose(1, 40).SelectMany(n => Gen.Shuffle(Enumerable.Range(0, n).ToArray())).ToArbitrary();
        Prop.ForAll(orders, order =>
        {
            var tracker = new OffsetTracker();
            var records = Enumerable.Range(0, order.Length).Select(o => Record(P0, 1000 + o)).ToArray();
            foreach (var r in records) tracker.Begin(r);
            var done = new HashSet<int>();
            foreach (var index in order)
            {
                tracker.Complete(records[index]);
                done.Add(index);
                var lowestPending = Enumerable.Range(0, order.Length).Where(i => !done.Contains(i)).DefaultIfEmpty(order.Length).Min();
                if (tracker.GetResumeOffset(P0) != 1000 + lowestPending) return false;
            }
            return tracker.GetResumeOffset(P0) == 1000 + order.Length;
        }).QuickCheckThrowOnFailure();
    }
}
