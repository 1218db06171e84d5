using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>A corrupt latest is refused with a reason and the newest valid version on its lineage is used.</summary>
public sealed class CheckpointFallbackTests
{
    [Fact]
    public async Task A_corrupt_latest_falls_back_to_its_parent_and_reports_why()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 3)) { }
        FlipByte(temp.PathOf(3, "policy.safetensors"), 10);

        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version);
        Assert.True(result.FellBack);
        var skipped = Assert.Single(result.Skipped);
        Assert.Equal(3, skipped.Version);
        Assert.Contains("policy.safetensors: sha256 mismatch", skipped.Reason);
        Assert.Equal(200, result.Checkpoint.NextOffset("prefonline.feedback", 0)); // v2's offsets, not v3's
    }

    [Fact]
    public async Task Several_corrupt_versions_are_all_skipped_in_order()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 4)) { }
        File.Delete(temp.PathOf(4, "replay.jsonl"));
        File.WriteAllText(temp.PathOf(3, "manifest.json"), "{");
        File.WriteAllText(temp.PathOf(2, "stray.txt"), "x");

        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(1, result.Checkpoint!.Version);
        Assert.Equal([4L, 3L, 2L], result.Skipped.Select(s => s.Version).ToArray());
        Assert.Contains("replay.jsonl: missing", result.Skipped[0].Reason);
        Assert.Contains("manifest.json: sha256 mismatch with manifest.sha256", result.Skipped[1].Reason);
        Assert.Contains("stray.txt: unexpected file", result.Skipped[2].Reason);
    }

    [Fact]
    public async Task When_nothing_is_valid_nothing_is_loaded_and_every_refusal_is_listed()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        FlipByte(temp.PathOf(1, "policy.safetensors"), 0);
        FlipByte(temp.PathOf(2, "policy.safetensors"), 0);
        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Null(result.Checkpoint);
        Assert.Equal([2L, 1L], result.Skipped.Select(s => s.Version).ToArray());
    }

    [Fact]
    public async Task A_latest_pointer_to_a_missing_version_falls_back_to_the_next_lower_version()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        WritePointer(temp.Root, "latest", "v000009\n");
        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version);
        Assert.Equal("v000009 does not exist", Assert.Single(result.Skipped).Reason);
    }

    [Fact]
    public async Task A_missing_or_garbled_latest_pointer_starts_from_the_highest_version_with_a_warning()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        WritePointer(temp.Root, "latest", "not a version");
        var garbled = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, garbled.Checkpoint!.Version);
        Assert.Contains(garbled.Warnings, w => w.Contains("'latest' pointer does not name a version", StringComparison.Ordinal));

        File.Delete(Path.Combine(temp.Root, "latest"));
        var missing = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, missing.Checkpoint!.Version);
        Assert.Contains(missing.Warnings, w => w.Contains("no readable 'latest' pointer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task After_a_rollback_the_fallback_follows_parents_and_never_returns_to_rolled_back_versions()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4))
        {
            await store.RollbackAsync(2, "test");
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(5)); // v5, parent v2; v3 and v4 were rolled back away
        }
        FlipByte(temp.PathOf(5, "policy.safetensors"), 0);
        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version);
        Assert.Equal([5L], result.Skipped.Select(s => s.Version).ToArray());
    }

    [Fact]
    public async Task With_an_unreadable_manifest_the_parent_comes_from_the_commit_event()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4))
        {
            await store.RollbackAsync(2, "test");
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(5)); // parent v2
        }
        File.WriteAllText(temp.PathOf(5, "manifest.json"), "garbage");
        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version); // not v4, which was rolled back away

        File.Delete(Path.Combine(temp.Root, "events.jsonl"));
        var withoutLog = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(4, withoutLog.Checkpoint!.Version); // no lineage left: the next lower number is all there is
    }

    [Fact]
    public async Task A_writer_resumes_from_the_fallback_and_records_it_as_the_parent()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 3)) { }
        FlipByte(temp.PathOf(3, "optimizer.safetensors"), 5);
        using var store = await temp.OpenAsync();
        var result = await store.LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version);
        var next = await store.WriteAsync(Draft(4));
        Assert.Equal(4, next.Version);
        Assert.Equal(2, next.Parent);
        Assert.Equal(4, temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task A_store_directory_that_does_not_exist_loads_nothing_with_a_warning()
    {
        var reader = new CheckpointReader(Path.Combine(Path.GetTempPath(), "prefonline-checkpoint-tests", "does-not-exist-" + Guid.NewGuid().ToString("N")));
        var result = await reader.LoadLatestValidAsync();
        Assert.Null(result.Checkpoint);
        Assert.Contains("does not exist", Assert.Single(result.Warnings));
        Assert.Empty(reader.ListVersions());
    }

    [Fact]
    public async Task A_latest_pointer_to_a_missing_version_with_no_lineage_left_falls_back_on_goods_line_never_to_an_abandoned_version()
    {
        // Issue 11 item 4: with the latest version and the log gone, the fallback took the next lower number on
        // disk, which after a rollback is a version the rollback abandoned.
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4))
        {
            await store.MarkGoodAsync(2);
            await store.RollbackAsync(2, "operator");
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(5)); // parent v2
            await store.WriteAsync(Draft(6)); // parent v5
        }
        Directory.Delete(temp.VersionDir(6), recursive: true);
        Directory.Delete(temp.VersionDir(5), recursive: true);
        File.Delete(Path.Combine(temp.Root, "events.jsonl"));

        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version); // not v4 (abandoned) nor v3
        Assert.Equal("v000006: v000006 does not exist", Assert.Single(result.Skipped).ToString());
        Assert.Contains(result.Warnings, w => w.Contains("the parent of v000006 is unknown (no manifest, no commit event); falling back on good's line", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_log_intact_abandoned_versions_are_recognised_and_skipped_even_without_good()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4))
        {
            await store.RollbackAsync(2, "operator");
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(5)); // parent v2
        }
        File.Delete(Path.Combine(temp.Root, "latest"));
        Assert.Equal<long>([3L, 4L], (await temp.Reader().AbandonedVersionsAsync()).Order().ToList());
        var result = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(5, result.Checkpoint!.Version);

        Directory.Delete(temp.VersionDir(5), recursive: true);
        var without = await temp.Reader().LoadLatestValidAsync();
        Assert.Equal(2, without.Checkpoint!.Version); // the highest version no rollback abandoned
    }

    [Fact]
    public async Task A_good_pointer_to_a_missing_version_is_moved_back_on_the_loaded_line_at_load_so_a_rollback_to_good_works()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4)) await store.MarkGoodAsync(3);
        Directory.Delete(temp.VersionDir(3), recursive: true);

        using var reopened = await temp.OpenAsync();
        var result = await reopened.LoadLatestValidAsync();
        Assert.Equal(4, result.Checkpoint!.Version);
        Assert.Contains(result.Warnings, w => w.StartsWith("'good' named v000003, which is invalid: v000003 does not exist; 'good' moved to v000002", StringComparison.Ordinal));
        Assert.Equal(2, temp.Reader().ReadPointers().Good);
        var repair = temp.Reader().ReadEvents().Last(e => e.Kind == CheckpointEventKind.MarkGood);
        Assert.Equal((3L, 2L), (repair.From!.Value, repair.To!.Value));
        Assert.StartsWith("repair at load: ", repair.Reason);

        var rollback = await reopened.RollbackAsync(null, "guardrail");
        Assert.Equal(2, rollback.To);
    }

    [Fact]
    public async Task A_good_pointer_left_ahead_of_latest_by_an_older_build_is_moved_back_to_latests_line_at_load()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 5)) await store.MarkGoodAsync(4);
        WritePointer(temp.Root, "latest", "v000002\n"); // what `checkpoint rollback` did before: latest only

        using var reopened = await temp.OpenAsync();
        var result = await reopened.LoadLatestValidAsync();
        Assert.Equal(2, result.Checkpoint!.Version);
        Assert.Contains(result.Warnings, w => w.StartsWith("'good' named v000004, which is not on the line of the loaded v000002", StringComparison.Ordinal));
        Assert.Equal(2, temp.Reader().ReadPointers().Good);
        var next = await reopened.WriteAsync(Draft(6));
        Assert.Equal(2, next.Parent);
        Assert.Equal(2, (await reopened.RollbackAsync(null, "guardrail")).To); // never forward to v4
    }
}
