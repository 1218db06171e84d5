using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// The states a crash can leave, reproduced on disk exactly as the write sequence would leave them:
/// the store opens at the previous version, never sees half a version, and the next writer cleans up.
/// </summary>
public sealed class CheckpointCrashTests
{
    [Fact]
    public async Task A_crash_mid_write_leaves_a_temp_directory_that_readers_ignore_and_the_next_writer_removes()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        // Crash while writing v3: some artefacts written, no manifest, never renamed.
        var crashed = Path.Combine(temp.Root, ".tmp-v000003-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(crashed);
        File.WriteAllBytes(Path.Combine(crashed, "policy.safetensors"), new byte[100]);

        var reader = temp.Reader();
        Assert.Equal([1L, 2L], reader.ListVersions().ToArray());
        Assert.Equal(2, (await reader.LoadLatestValidAsync()).Checkpoint!.Version);
        Assert.Single(reader.FindLeftovers());

        using var store = await temp.OpenAsync();
        Assert.False(Directory.Exists(crashed));
        Assert.Empty(reader.FindLeftovers());
        Assert.Contains(reader.ReadEvents(), e => e.Kind == CheckpointEventKind.Cleanup && e.Reason!.Contains(".tmp-v000003", StringComparison.Ordinal));
        var resumed = await store.LoadLatestValidAsync();
        Assert.Equal(2, resumed.Checkpoint!.Version);
        Assert.Equal(3, (await store.WriteAsync(Draft(3))).Version);
    }

    [Fact]
    public async Task A_crash_after_the_rename_but_before_the_pointer_keeps_latest_on_the_previous_version()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 3)) { }
        // v3 is complete on disk, but its commit (the pointer rename) never happened.
        WritePointer(temp.Root, "latest", "v000002\n");

        Assert.Equal(2, (await temp.Reader().LoadLatestValidAsync()).Checkpoint!.Version);
        using var store = await temp.OpenAsync();
        var resumed = await store.LoadLatestValidAsync();
        Assert.Equal(2, resumed.Checkpoint!.Version);
        var next = await store.WriteAsync(Draft(4));
        Assert.Equal((4L, 2L), (next.Version, next.Parent!.Value)); // the orphan's number is not reused
    }

    [Fact]
    public async Task An_interrupted_pointer_update_leaves_the_old_pointer_and_a_temp_file_that_is_ignored_then_removed()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        // Crash while committing v3: version directory renamed, pointer temp written and fsynced, never renamed.
        Directory.CreateDirectory(temp.VersionDir(3));
        File.Copy(temp.PathOf(2, "manifest.json"), temp.PathOf(3, "manifest.json")); // (contents do not matter: it is not latest)
        File.WriteAllText(Path.Combine(temp.Root, ".latest.tmp"), "v000003\n");

        Assert.Equal(2, temp.Reader().ReadPointers().Latest);
        Assert.Equal(2, (await temp.Reader().LoadLatestValidAsync()).Checkpoint!.Version);

        using var store = await temp.OpenAsync();
        Assert.False(File.Exists(Path.Combine(temp.Root, ".latest.tmp")));
        Assert.Equal(2, (await store.LoadLatestValidAsync()).Checkpoint!.Version);
    }

    [Fact]
    public async Task An_interrupted_deletion_vanishes_from_listings_and_is_finished_by_the_next_writer()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 3)) { }
        var doomed = Path.Combine(temp.Root, ".deleting-v000001-" + Guid.NewGuid().ToString("N"));
        Directory.Move(temp.VersionDir(1), doomed);
        Assert.Equal([2L, 3L], temp.Reader().ListVersions().ToArray());
        using var store = await temp.OpenAsync();
        Assert.False(Directory.Exists(doomed));
    }

    [Fact]
    public async Task A_torn_last_event_line_is_skipped_and_the_next_event_starts_on_its_own_line()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        File.AppendAllText(Path.Combine(temp.Root, "events.jsonl"), "{\"time\":\"2025-06-01T12:0");
        using var store = await temp.OpenAsync();
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(2));
        var events = temp.Reader().ReadEvents();
        Assert.Equal([1L, 2L], events.Where(e => e.Kind == CheckpointEventKind.Commit).Select(e => e.Version!.Value).ToArray());
    }
}
