using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Tests.Tools;
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

    [Fact]
    public async Task Retention_never_deletes_the_target_of_a_pending_rollback_request_so_the_rollback_still_applies()
    {
        // Issue 11 item 4: the CLI verified the target when it left the request, but retention could delete it before
        // the learner applied the request; the rollback was then refused.
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 5, keepLast: 10);
        await CheckpointStore.RequestRollbackAsync(temp.Root, 2, "operator"); // the learner applies it at its next boundary
        using var strict = await ReopenAsync(temp, store, keepLast: 1, load: false);
        Assert.Equal([1L, 3L, 4L], await strict.ApplyRetentionAsync());
        Assert.Equal([2L, 5L], temp.Reader().ListVersions().ToArray());
        var applied = await strict.ApplyRequestedRollbackAsync();
        Assert.Equal(2, applied!.To);
    }

    [Fact]
    public async Task Retention_keeps_versions_registered_as_still_needed_and_forgets_them_when_released()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 5, keepLast: 10);
        using var strict = await ReopenAsync(temp, store, keepLast: 1);
        var candidates = new List<long> { 2, 3 };
        strict.ProtectFromRetention("guardrail promotion candidates", () => candidates.ToList());
        Assert.Equal([1L, 4L], await strict.ApplyRetentionAsync());
        Assert.Equal([2L, 3L, 5L], temp.Reader().ListVersions().ToArray());
        Assert.Contains(2L, strict.ProtectedVersions());

        candidates.Clear();
        Assert.Equal([2L, 3L], await strict.ApplyRetentionAsync());
    }

    [Fact]
    public async Task Retention_skips_a_version_another_process_is_verifying_and_deletes_it_afterwards()
    {
        // `prefonline checkpoint verify` runs beside the learner (kubectl exec): it holds a shared flock on the
        // version's manifest while it reads; here `flock -s` in a child process stands in for it.
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 4, keepLast: 10);
        using var strict = await ReopenAsync(temp, store, keepLast: 2);
        var flock = ExternalTool.Require("flock", "util-linux");
        using var reader = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(flock)
        {
            ArgumentList = { "--shared", "--close", Path.Combine(temp.VersionDir(1), "manifest.json"), "-c", "echo held; sleep 60" },
            RedirectStandardOutput = true,
        })!;
        try
        {
            Assert.Equal("held", await reader.StandardOutput.ReadLineAsync());
            Assert.Equal([2L], await strict.ApplyRetentionAsync()); // v1 is being read: kept for now
            Assert.Equal([1L, 3L, 4L], temp.Reader().ListVersions().ToArray());
        }
        finally
        {
            reader.Kill(entireProcessTree: true);
            await reader.WaitForExitAsync();
        }
        Assert.Equal([1L], await strict.ApplyRetentionAsync());
    }

    [Fact]
    public async Task A_reader_that_meets_a_version_retention_is_deleting_reports_it_instead_of_reading_half_a_directory()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        var flock = ExternalTool.Require("flock", "util-linux");
        using var retention = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(flock)
        {
            ArgumentList = { "--exclusive", "--close", Path.Combine(temp.VersionDir(1), "manifest.json"), "-c", "echo held; sleep 60" },
            RedirectStandardOutput = true,
        })!;
        try
        {
            Assert.Equal("held", await retention.StandardOutput.ReadLineAsync());
            var verdict = await temp.Reader().VerifyAsync(1);
            Assert.Equal("v000001 is being deleted by retention", verdict.Reason);
        }
        finally
        {
            retention.Kill(entireProcessTree: true);
            await retention.WaitForExitAsync();
        }
        Assert.True((await temp.Reader().VerifyAsync(1)).IsValid);
    }

    private static async Task<CheckpointStore> ReopenAsync(TempStore temp, CheckpointStore open, int keepLast, bool load)
    {
        open.Dispose();
        var store = await temp.OpenAsync(keepLast: keepLast);
        if (load) await store.LoadLatestValidAsync();
        return store;
    }

    private static Task<CheckpointStore> ReopenAsync(TempStore temp, CheckpointStore open, int keepLast) => ReopenAsync(temp, open, keepLast, load: true);
}
