using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// Issue 11 item 8 at the store: a full checkpoint volume (ENOSPC, injected by <see cref="SimulatedFullDisk"/>
/// through the store's I/O pipeline) makes the store delete what retention may delete and try again, and when
/// nothing can be deleted it fails cleanly, saying so, with <c>latest</c> unchanged.
/// </summary>
public sealed class CheckpointOutOfSpaceTests
{
    [Fact]
    public async Task A_full_volume_makes_room_by_deleting_the_oldest_unprotected_versions_then_the_write_succeeds()
    {
        using var temp = new TempStore();
        var disk = new SimulatedFullDisk(temp.Root);
        using var store = await CheckpointStore.OpenAsync(temp.Options(keepLast: 10), ioPipeline: disk.Pipeline(temp.Options(keepLast: 10)), timeProvider: new SteppingTimeProvider());
        await store.LoadLatestValidAsync();
        for (var i = 1; i <= 6; i++) await store.WriteAsync(Draft(i));
        await store.MarkGoodAsync(2);
        store.ProtectFromRetention("promotion candidates", () => [1]);

        disk.MaxVersions = 6; // the volume holds six versions: the seventh does not fit
        var written = await store.WriteAsync(Draft(7));
        Assert.Equal(7, written.Version);
        Assert.Equal(1, disk.Refused);
        // The oldest version retention may delete went (v1 is a candidate, v2 is good: both kept), KeepLast aside.
        Assert.Equal([1L, 2L, 4L, 5L, 6L, 7L], temp.Reader().ListVersions().ToArray());
        var deletion = Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Delete);
        Assert.Equal(3, deletion.Version);
        Assert.StartsWith("the device is full (No space left on device", deletion.Reason);
        Assert.Equal(7, temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task When_nothing_can_be_deleted_the_write_fails_saying_the_volume_is_full_and_succeeds_once_space_is_back()
    {
        using var temp = new TempStore();
        var disk = new SimulatedFullDisk(temp.Root);
        using var store = await CheckpointStore.OpenAsync(temp.Options(keepLast: 10), ioPipeline: disk.Pipeline(temp.Options(keepLast: 10)), timeProvider: new SteppingTimeProvider());
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(1));
        await store.WriteAsync(Draft(2));
        await store.MarkGoodAsync(1); // v1 good, v2 latest: nothing else to delete

        disk.Full = true;
        var failure = await Assert.ThrowsAsync<CheckpointWriteException>(() => store.WriteAsync(Draft(3)));
        Assert.True(failure.OutOfSpace);
        Assert.True(CheckpointRetry.IsOutOfSpace(failure));
        Assert.Equal(1, disk.Refused); // not retried blindly: waiting does not free space
        Assert.Contains("the device is full, even after retention made what room it could", failure.Message);
        Assert.Equal(2, temp.Reader().ReadPointers().Latest);
        Assert.Equal([1L, 2L], temp.Reader().ListVersions().ToArray());
        Assert.Empty(temp.Reader().FindLeftovers());

        disk.Full = false;
        var next = await store.WriteAsync(Draft(4));
        Assert.Equal((4L, 2L), (next.Version, next.Parent!.Value)); // the failed number is not reused
    }
}
