using PrefOnline.Learning.Training;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>Published versions translate to update counts exactly, or by the newest known version below them.</summary>
public sealed class PolicyVersionMapTests
{
    [Fact]
    public void Known_versions_are_exact_and_unknown_ones_take_the_floor()
    {
        var map = new PolicyVersionMap([new(3, 1), new(7, 2)], currentVersion: 12, currentUpdateCount: 4);
        Assert.Equal(1, map.UpdateCountOf(3));
        Assert.Equal(2, map.UpdateCountOf(9));          // a version this learner never published: the one below it
        Assert.Equal(4, map.UpdateCountOf(12));
        Assert.Equal(4, map.UpdateCountOf(40));
        Assert.Equal(0, map.UpdateCountOf(2));          // older than anything known
        map.Publish(15, 5);
        Assert.Equal(5, map.UpdateCountOf(15));
        Assert.Equal([3L, 7, 12, 15], map.Entries.Keys);
    }

    [Fact]
    public void A_stored_entry_wins_over_the_current_one_and_the_first_version_replaces_zero()
    {
        Assert.Equal(6, new PolicyVersionMap([new(5, 6)], currentVersion: 5, currentUpdateCount: 9).UpdateCountOf(5));
        var fresh = new PolicyVersionMap([], currentVersion: 0, currentUpdateCount: 0);
        fresh.AdoptFirst(1_700_000_000, 0);
        Assert.Equal([1_700_000_000L], fresh.Entries.Keys);
    }

    [Fact]
    public void The_map_is_bounded_and_forgets_the_oldest()
    {
        var map = new PolicyVersionMap([], currentVersion: 0, currentUpdateCount: 0);
        for (var v = 1; v <= PolicyVersionMap.MaxEntries + 10; v++) map.Publish(v, v);
        Assert.Equal(PolicyVersionMap.MaxEntries, map.Entries.Count);
        Assert.Equal(11, map.Entries.Keys.First());
    }
}
