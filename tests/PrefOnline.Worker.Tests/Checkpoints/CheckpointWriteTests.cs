using System.Text;
using System.Text.Json;
using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointWriteTests
{
    [Fact]
    public async Task Written_artefacts_read_back_byte_for_byte_with_offsets_and_metrics()
    {
        using var temp = new TempStore();
        var policy = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 31)).ToArray();
        var source = Path.Combine(temp.Root, "..", Guid.NewGuid().ToString("N") + "-vocab.json");
        await File.WriteAllTextAsync(source, "{\"a\":1}");
        try
        {
            using (var store = await temp.OpenAsync(time: TimeProvider.System)) // sub-millisecond clock
            {
                var loaded = await store.LoadLatestValidAsync();
                Assert.Null(loaded.Checkpoint);
                var written = await store.WriteAsync(new CheckpointDraft()
                    .AddBytes("policy.safetensors", policy)
                    .AddFile("replay.bin", async (stream, ct) =>
                    {
                        await stream.WriteAsync(new byte[] { 1, 2, 3 }, ct);
                        await stream.DisposeAsync(); // a writer that closes "its" stream must not break the store
                    })
                    .AddFileAt("reward.safetensors", (path, ct) => new ValueTask(File.WriteAllBytesAsync(path, [9, 8, 7, 6], ct)))
                    .CopyFile("vocab.json", source)
                    .SetOffset("prefonline.feedback", 2, 1840)
                    .SetMetric("reward", 0.625));
                Assert.Equal(1, written.Version);
                Assert.Equal((await temp.Reader().LoadAsync(1)).Manifest.Created, written.Created); // what was returned is what was stored
            }

            var checkpoint = (await temp.Reader().LoadLatestValidAsync()).Checkpoint!;
            Assert.Equal(1, checkpoint.Version);
            Assert.Equal(policy, await File.ReadAllBytesAsync(checkpoint.GetPath("policy.safetensors")));
            await using (var replay = checkpoint.OpenRead("replay.bin"))
            {
                var bytes = new byte[8];
                Assert.Equal(3, await replay.ReadAsync(bytes));
                Assert.Equal(new byte[] { 1, 2, 3 }, bytes[..3]);
            }
            Assert.Equal(new byte[] { 9, 8, 7, 6 }, await File.ReadAllBytesAsync(checkpoint.GetPath("reward.safetensors")));
            Assert.Equal("{\"a\":1}", await File.ReadAllTextAsync(checkpoint.GetPath("vocab.json")));
            Assert.Equal(1840, checkpoint.NextOffset("prefonline.feedback", 2));
            Assert.Null(checkpoint.NextOffset("prefonline.feedback", 0));
            Assert.Null(checkpoint.NextOffset("other", 2));
            Assert.Equal(0.625, checkpoint.Metrics["reward"]);
            var missing = Assert.Throws<KeyNotFoundException>(() => checkpoint.GetPath("nope.bin"));
            Assert.Contains("policy.safetensors", missing.Message);
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task Manifest_records_version_parent_time_hashes_sizes_offsets_metrics_and_config_hash()
    {
        using var temp = new TempStore();
        using (var store = await temp.OpenAsync(time: new SteppingTimeProvider(new DateTimeOffset(2025, 6, 1, 12, 0, 3, 250, TimeSpan.Zero), stepSeconds: 0)))
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1));
            await store.WriteAsync(Draft(2, feedbackOffset: 1840).SetMetric("loss", double.NaN));
        }

        var text = await File.ReadAllTextAsync(temp.PathOf(2, "manifest.json"));
        using var json = JsonDocument.Parse(text);
        var root = json.RootElement;
        Assert.Equal(CheckpointManifest.CurrentFormatVersion, root.GetProperty("format_version").GetInt32());
        Assert.Equal(2, root.GetProperty("version").GetInt64());
        Assert.Equal(1, root.GetProperty("parent").GetInt64());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", root.GetProperty("created").GetString());
        Assert.Equal("sha256:" + new string('a', 64), root.GetProperty("config_hash").GetString());
        Assert.Equal(1840, root.GetProperty("offsets").GetProperty("prefonline.feedback").GetProperty("0").GetInt64());
        Assert.Equal(1847, root.GetProperty("offsets").GetProperty("prefonline.feedback").GetProperty("1").GetInt64());
        Assert.Equal(5520, root.GetProperty("offsets").GetProperty("prefonline.prompts").GetProperty("0").GetInt64());
        Assert.Equal(0.52, root.GetProperty("metrics").GetProperty("reward").GetDouble());
        Assert.Equal("NaN", root.GetProperty("metrics").GetProperty("loss").GetString());
        var files = root.GetProperty("files");
        Assert.Equal(["optimizer.safetensors", "policy.safetensors", "replay.jsonl"], files.EnumerateObject().Select(p => p.Name).ToArray());
        foreach (var file in files.EnumerateObject())
        {
            var path = temp.PathOf(2, file.Name);
            Assert.Equal(Sha256Hex(path), file.Value.GetProperty("sha256").GetString());
            Assert.Equal(new FileInfo(path).Length, file.Value.GetProperty("size").GetInt64());
        }
        Assert.Equal(["manifest.json", "manifest.sha256", "optimizer.safetensors", "policy.safetensors", "replay.jsonl"],
            Directory.EnumerateFileSystemEntries(temp.VersionDir(2)).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(Sha256Hex(temp.PathOf(2, "manifest.json")) + "  manifest.json\n", await File.ReadAllTextAsync(temp.PathOf(2, "manifest.sha256")));
        var first = JsonDocument.Parse(await File.ReadAllTextAsync(temp.PathOf(1, "manifest.json"))).RootElement;
        Assert.Equal(JsonValueKind.Null, first.GetProperty("parent").ValueKind);

        var manifest = (await temp.Reader().LoadAsync(2)).Manifest;
        Assert.True(double.IsNaN(manifest.Metrics["loss"]));
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 12, 0, 3, 250, TimeSpan.Zero), manifest.Created);
        Assert.Equal("2025-06-01T12:00:03.250Z", root.GetProperty("created").GetString());
        Assert.Equal(4096 + 2 + 2048 + Encoding.UTF8.GetByteCount("{\"seed\":2}\n"), manifest.TotalBytes);
    }

    [Fact]
    public async Task Equal_drafts_give_byte_identical_manifests_apart_from_version_parent_and_time()
    {
        using var temp = new TempStore();
        var fixedClock = new SteppingTimeProvider();
        using (var store = await temp.OpenAsync(time: fixedClock))
        {
            store.StartNewLineage();
            await store.WriteAsync(Draft(3));
            store.StartNewLineage();
            await store.WriteAsync(Draft(3));
        }
        static string Normalise(string manifest) => string.Join("\n", manifest.Split('\n').Where(l => !l.Contains("\"version\"") && !l.Contains("\"created\"")));
        Assert.Equal(Normalise(await File.ReadAllTextAsync(temp.PathOf(1, "manifest.json"))), Normalise(await File.ReadAllTextAsync(temp.PathOf(2, "manifest.json"))));
    }

    [Theory]
    [InlineData("")]
    [InlineData("manifest.json")]
    [InlineData("MANIFEST.JSON")]
    [InlineData("manifest.sha256")]
    [InlineData(".hidden")]
    [InlineData("sub/policy.safetensors")]
    [InlineData("../escape")]
    [InlineData("has space.bin")]
    public void Bad_artefact_names_are_refused_before_anything_is_written(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new CheckpointDraft().AddBytes(name, [1]));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void Duplicate_names_differing_only_in_case_are_refused()
    {
        var draft = new CheckpointDraft().AddBytes("policy.bin", [1]);
        Assert.Contains("already", Assert.Throws<ArgumentException>(() => draft.AddBytes("Policy.bin", [2])).Message);
    }

    [Fact]
    public void Offsets_and_metrics_are_checked_when_set()
    {
        var draft = new CheckpointDraft();
        Assert.Throws<ArgumentOutOfRangeException>(() => draft.SetOffset("t", -1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => draft.SetOffset("t", 0, -5));
        Assert.Throws<ArgumentException>(() => draft.SetOffset(" ", 0, 5));
        Assert.Throws<ArgumentException>(() => draft.SetMetric("", 1));
        Assert.Throws<ArgumentException>(() => draft.CopyFile("vocab.json", "/nonexistent/vocab.json"));
    }

    [Fact]
    public async Task A_draft_without_artefacts_is_refused()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        store.StartNewLineage();
        await Assert.ThrowsAsync<ArgumentException>(() => store.WriteAsync(new CheckpointDraft().SetOffset("t", 0, 1)));
        Assert.Empty(temp.Reader().ListVersions());
    }

    [Fact]
    public async Task A_writer_that_leaves_a_stray_file_or_none_fails_the_write_and_leaves_nothing()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        store.StartNewLineage();

        var stray = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(new CheckpointDraft()
            .AddFileAt("policy.safetensors", async (path, ct) =>
            {
                await File.WriteAllBytesAsync(path, [1], ct);
                await File.WriteAllBytesAsync(path + ".tmp-123", [2], ct);
            })));
        Assert.Contains("policy.safetensors.tmp-123", stray.Message);

        var none = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(new CheckpointDraft()
            .AddFileAt("policy.safetensors", (_, _) => ValueTask.CompletedTask)));
        Assert.Contains("without creating", none.Message);

        Assert.Empty(temp.Reader().ListVersions());
        Assert.Empty(temp.Reader().FindLeftovers());
        Assert.Null(temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task Writing_before_the_lineage_is_known_is_refused_with_the_fix_in_the_message()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(Draft(1)));
        Assert.Contains("LoadLatestValidAsync", e.Message);
        Assert.Contains("StartNewLineage", e.Message);
        Assert.Throws<InvalidOperationException>(() => store.NextParent);
    }

    [Fact]
    public async Task A_resumed_writer_continues_the_lineage_and_StartNewLineage_starts_a_root()
    {
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 2)) Assert.Equal(2, store.NextParent);
        using (var store = await temp.OpenAsync())
        {
            var resumed = await store.LoadLatestValidAsync();
            Assert.Equal(2, resumed.Checkpoint!.Version);
            Assert.Equal(3, (await store.WriteAsync(Draft(3))).Version);
            Assert.Equal(2, (await temp.Reader().LoadAsync(3)).Parent);
            store.StartNewLineage();
            var root = await store.WriteAsync(Draft(4));
            Assert.Equal(4, root.Version);
            Assert.Null(root.Parent);
        }
    }

    [Fact]
    public async Task Cancellation_before_the_rename_leaves_no_version_and_no_temp_directory()
    {
        using var temp = new TempStore();
        using var store = await temp.OpenAsync();
        store.StartNewLineage();
        using var cancel = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.WriteAsync(new CheckpointDraft()
            .AddFileAt("a.bin", async (path, ct) =>
            {
                await File.WriteAllBytesAsync(path, [1], ct);
                await cancel.CancelAsync();
            })
            .AddBytes("b.bin", [2]), cancel.Token));
        Assert.Empty(temp.Reader().ListVersions());
        Assert.Empty(temp.Reader().FindLeftovers());
    }
}
