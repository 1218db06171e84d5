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
}
