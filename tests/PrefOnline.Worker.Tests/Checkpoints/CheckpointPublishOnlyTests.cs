using System.Text.Json.Nodes;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.PolicyDistribution;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// Publish-only versions (<c>Checkpoints:Interval</c> &gt; 1): policies published between two checkpoints. They are versions
/// like any other for readers, but a restart resumes from the checkpoint they follow, the numbers go on above them,
/// they never become good or a rollback target, and retention keeps the checkpoint a restart needs.
/// </summary>
public sealed class CheckpointPublishOnlyTests
{
    [Fact]
    public async Task A_crash_after_publish_only_versions_resumes_from_the_checkpoint_they_follow_and_numbers_go_on_above_them()
    {
        using var temp = new TempStore();
        using (var store = await temp.OpenAsync())
        {
            await store.LoadLatestValidAsync();
            var checkpoint = await store.WriteAsync(Draft(1, 100));
            Assert.Equal(checkpoint.Version, store.ResumePoint!.Version);
            var published = await store.WriteAsync(PublishOnly(2, checkpoint));
            Assert.True(published.PublishOnly);
            Assert.Equal((2L, 1L), (published.Version, published.Parent!.Value));
            Assert.Equal(checkpoint.Offsets, published.Offsets); // what is durable, not what the state had read
            Assert.Equal(1, store.ResumePoint!.Version);
            await store.WriteAsync(PublishOnly(3, checkpoint));
            Assert.True(JsonNode.Parse(File.ReadAllText(temp.PathOf(3, "manifest.json")))!["publish_only"]!.GetValue<bool>());
        } // the process dies: versions 2 and 3 were published, their state was never checkpointed

        Assert.True((await temp.Reader().VerifyAsync(3)).IsValid); // served like any version
        using (var store = await temp.ReopenAsync())
        {
            var resumed = await store.LoadLatestValidAsync();
            Assert.Equal(1, resumed.Checkpoint!.Version);
            Assert.Empty(resumed.Skipped);
            Assert.Empty(resumed.Warnings);
            var next = await store.WriteAsync(Draft(4, 400));
            Assert.Equal((4L, 1L), (next.Version, next.Parent!.Value)); // supersedes the lost 2 and 3, whose numbers are not reused
            // Withdrawn from what the learner serves (410 on /policy/3/…); the generators move on with the next event.
            Assert.Equal(ServedVersionState.Withdrawn, await new ServedLineage(temp.Root).StateOfAsync(3, CancellationToken.None));
        }
    }

    [Fact]
    public async Task A_publish_only_version_never_becomes_good_nor_a_rollback_target()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        await store.LoadLatestValidAsync();
        var checkpoint = await store.WriteAsync(Draft(1));
        await store.WriteAsync(PublishOnly(2, checkpoint));

        var good = await Assert.ThrowsAsync<ArgumentException>(() => store.MarkGoodAsync(2));
        Assert.Contains("publish-only", good.Message, StringComparison.Ordinal);
        var rollback = await Assert.ThrowsAsync<CheckpointCorruptException>(() => store.RollbackAsync(2, "test"));
        Assert.Contains("publish-only", rollback.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => CheckpointStore.RequestRollbackAsync(temp.Root, 2, "test"));
        await store.MarkGoodAsync(1);
    }

    [Fact]
    public async Task Retention_keeps_the_checkpoint_a_restart_resumes_from_however_many_publish_only_versions_follow()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync(keepLast: 2);
        await store.LoadLatestValidAsync();
        var checkpoint = await store.WriteAsync(Draft(1));
        for (var seed = 2; seed <= 6; seed++) await store.WriteAsync(PublishOnly(seed, checkpoint));
        Assert.Equal([1L, 5L, 6L], temp.Reader().ListVersions().ToArray());

        await store.WriteAsync(Draft(7));
        Assert.Equal([6L, 7L], temp.Reader().ListVersions().ToArray()); // the new checkpoint frees the old one
    }

    [Fact]
    public async Task A_format_1_manifest_cannot_be_publish_only()
    {
        using var temp = new TempStore();
        using (var store = await temp.OpenAsync())
        {
            await store.LoadLatestValidAsync();
            var checkpoint = await store.WriteAsync(Draft(1));
            await store.WriteAsync(PublishOnly(2, checkpoint));
        }
        RewriteManifest(temp.VersionDir(2), File.ReadAllText(temp.PathOf(2, "manifest.json")).Replace("\"format_version\": 2", "\"format_version\": 1", StringComparison.Ordinal));
        Assert.Contains((await temp.Reader().VerifyAsync(2)).Problems, p => p.Contains("format_version 1 has no publish_only versions", StringComparison.Ordinal));
    }

    private static CheckpointDraft PublishOnly(int seed, Checkpoint after)
    {
        var weights = new byte[1000 + seed];
        new Random(seed).NextBytes(weights);
        return new CheckpointDraft().AddBytes("policy.safetensors", weights).SetOffsets(after.Offsets).AsPublishOnly();
    }
}
