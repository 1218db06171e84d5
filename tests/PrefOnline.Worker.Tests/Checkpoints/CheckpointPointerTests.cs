using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointPointerTests
{
    [Fact]
    public async Task Latest_follows_every_write_and_is_a_one_line_text_file()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        await store.LoadLatestValidAsync();
        for (var i = 1; i <= 3; i++)
        {
            await store.WriteAsync(Draft(i));
            Assert.Equal($"v00000{i}\n", await File.ReadAllTextAsync(Path.Combine(temp.Root, "latest")));
        }
        Assert.False(File.Exists(Path.Combine(temp.Root, "good")));
        Assert.Null(temp.Reader().ReadPointers().Good);
    }

    [Fact]
    public async Task Good_moves_only_through_MarkGood_and_only_forward()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 3);
        await store.MarkGoodAsync(2);
        Assert.Equal(2, temp.Reader().ReadPointers().Good);
        await store.WriteAsync(Draft(4));
        Assert.Equal(2, temp.Reader().ReadPointers().Good); // a write does not move good
        await store.MarkGoodAsync(2); // no-op
        var backwards = await Assert.ThrowsAsync<ArgumentException>(() => store.MarkGoodAsync(1));
        Assert.Contains("only moves forward", backwards.Message);
        await store.MarkGoodAsync(4);
        var pointers = temp.Reader().ReadPointers();
        Assert.Equal((4L, 4L), (pointers.Latest!.Value, pointers.Good!.Value));
        var marks = temp.Reader().ReadEvents().Where(e => e.Kind == CheckpointEventKind.MarkGood).ToList();
        Assert.Equal([(null, 2L), (2L, 4L)], marks.Select(e => (e.From, e.To!.Value)).ToArray());
    }

    [Fact]
    public async Task Good_never_points_at_a_version_that_does_not_verify()
    {
        using var temp = new TempStore();
        using var store = await OpenWithVersionsAsync(temp, 3);
        await store.MarkGoodAsync(1);
        FlipByte(temp.PathOf(3, "replay.jsonl"), 0);
        var corrupt = await Assert.ThrowsAsync<CheckpointCorruptException>(() => store.MarkGoodAsync(3));
        Assert.Contains("replay.jsonl: sha256 mismatch", corrupt.Message);
        var missing = await Assert.ThrowsAsync<CheckpointCorruptException>(() => store.MarkGoodAsync(9));
        Assert.Contains("v000009 does not exist", missing.Message);
        Assert.Equal(1, temp.Reader().ReadPointers().Good);
    }

    [Fact]
    public async Task Listing_marks_latest_and_good_and_gives_each_verdict()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 3)) await store.MarkGoodAsync(2);
        FlipByte(temp.PathOf(1, "policy.safetensors"), 3);
        var rows = await temp.Reader().ListAsync();
        Assert.Equal([3L, 2L, 1L], rows.Select(r => r.Version).ToArray());
        Assert.Equal([true, false, false], rows.Select(r => r.IsLatest).ToArray());
        Assert.Equal([false, true, false], rows.Select(r => r.IsGood).ToArray());
        Assert.Equal([true, true, false], rows.Select(r => r.Verification.IsValid).ToArray());
        Assert.All(rows, r => Assert.NotNull(r.Manifest)); // even the corrupt one: its manifest is fine
    }
}
