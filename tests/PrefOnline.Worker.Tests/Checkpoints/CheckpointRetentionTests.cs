using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointRetentionTests
{
    [Fact]
    public async Task Only_the_last_K_versions_are_kept_and_each_deletion_is_logged()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync(keepLast: 3);
        await store.LoadLatestValidAsync();
        for (var i = 1; i <= 6; i++) await store.WriteAsync(Draft(i));
        Assert.Equal([4L, 5L, 6L], temp.Reader().ListVersions().ToArray());
        Assert.Empty(temp.Reader().FindLeftovers());
        var deletes = temp.Reader().ReadEvents().Where(e => e.Kind == CheckpointEventKind.Delete).Select(e => e.Version!.Value).ToArray();
        Assert.Equal([1L, 2L, 3L], deletes);
    }

    [Fact]
    public async Task Retention_never_deletes_what_good_points_to()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync(keepLast: 2);
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(1));
        await store.MarkGoodAsync(1);
        for (var i = 2; i <= 6; i++) await store.WriteAsync(Draft(i));
        Assert.Equal([1L, 5L, 6L], temp.Reader().ListVersions().ToArray());
        Assert.True((await temp.Reader().VerifyAsync(1)).IsValid);
    }

    [Fact]
    public async Task Retention_never_deletes_a_rolled_back_latest_nor_the_parent_of_the_next_write()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync(keepLast: 2);
        await store.LoadLatestValidAsync();
        for (var i = 1; i <= 4; i++) await store.WriteAsync(Draft(i));
        Assert.Equal([3L, 4L], temp.Reader().ListVersions().ToArray());
        await store.RollbackAsync(3, "test");
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(5)); // v5, parent v3: latest is v5, v3 is outside the last 2 = {4, 5}
        Assert.Equal([4L, 5L], temp.Reader().ListVersions().ToArray());

        // Lower KeepLast to 1 and roll back to 4: latest (4) and the newest (5) both stay.
        await store.RollbackAsync(4, "test");
        using var strict = await ReopenAsync(temp, store, keepLast: 1);
        Assert.Empty(await strict.ApplyRetentionAsync());
        Assert.Equal([4L, 5L], temp.Reader().ListVersions().ToArray());
    }

    [Fact]
    public async Task Corrupt_versions_are_subject_to_retention_like_any_other()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync(keepLast: 2);
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(1));
        File.WriteAllText(temp.PathOf(1, "manifest.json"), "{");
        await store.WriteAsync(Draft(2));
        await store.WriteAsync(Draft(3));
        Assert.Equal([2L, 3L], temp.Reader().ListVersions().ToArray());
    }

    private static async Task<CheckpointStore> ReopenAsync(TempStore temp, CheckpointStore open, int keepLast)
    {
        open.Dispose();
        var store = await temp.OpenAsync(keepLast: keepLast);
        await store.LoadLatestValidAsync();
        return store;
    }
}
