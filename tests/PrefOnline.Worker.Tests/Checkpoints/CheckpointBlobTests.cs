using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// Shared artefacts (manifest format 2): stored once in <c>blobs/sha256/</c>, hard-linked into every version that lists
/// them, verified, collected when no version references them, and every crash state of those steps.
/// </summary>
public sealed class CheckpointBlobTests
{
    [Fact]
    public async Task A_shared_file_is_stored_once_and_every_version_holds_a_link_to_it()
    {
        using var temp = new TempStore();
        var reference = SourceFile(temp, "reference.bin", 50_000, seed: 7);
        using var store = await temp.OpenAsync();
        await store.LoadLatestValidAsync();
        var first = await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", reference));
        var blob = BlobPath(temp, Sha256Hex(reference));
        var written = File.GetLastWriteTimeUtc(blob);
        var second = await store.WriteAsync(Draft(2).ShareFile("reference.safetensors", reference));

        Assert.Equal([Sha256Hex(reference)], BlobNames(temp));
        Assert.Equal(written, File.GetLastWriteTimeUtc(blob)); // the second version wrote nothing
        foreach (var version in new[] { first, second })
        {
            var entry = version.Manifest.Files["reference.safetensors"];
            Assert.Equal((Sha256Hex(reference), 50_000L, true), (entry.Sha256, entry.Size, entry.Shared));
            Assert.False(version.Manifest.Files["policy.safetensors"].Shared);
            Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(version.GetPath("reference.safetensors")));
            Assert.Equal(LinkCount(blob), LinkCount(version.GetPath("reference.safetensors"))); // the same inode
            Assert.Equal(version.Manifest.TotalBytes - 50_000, version.Manifest.OwnBytes);
        }
        Assert.Equal(3, LinkCount(blob)); // the blob and two versions

        var manifest = JsonNode.Parse(File.ReadAllText(temp.PathOf(2, "manifest.json")))!;
        Assert.Equal(2, manifest["format_version"]!.GetValue<int>());
        Assert.True(manifest["files"]!["reference.safetensors"]!["shared"]!.GetValue<bool>());
        Assert.Null(manifest["files"]!["policy.safetensors"]!["shared"]); // written only when true
        foreach (var version in new long[] { 1, 2 }) Assert.True((await temp.Reader().VerifyAsync(version)).IsValid);
    }

    [Fact]
    public async Task A_format_1_store_still_loads_and_a_format_1_manifest_cannot_claim_shared_files()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        foreach (var version in new long[] { 1, 2 }) // exactly what the previous build wrote: format 1, no "shared"
            RewriteManifest(temp.VersionDir(version), File.ReadAllText(temp.PathOf(version, "manifest.json")).Replace("\"format_version\": 2", "\"format_version\": 1", StringComparison.Ordinal));

        using (var store = await temp.OpenAsync())
        {
            var loaded = await store.LoadLatestValidAsync();
            Assert.Equal(2, loaded.Checkpoint!.Version);
            Assert.Equal(1, loaded.Checkpoint.Manifest.FormatVersion);
            Assert.Empty(loaded.Skipped);
            var next = await store.WriteAsync(Draft(3).ShareFile("reference.safetensors", SourceFile(temp, "reference.bin", 1000, seed: 1)));
            Assert.Equal((3L, 2L, 2), (next.Version, next.Parent!.Value, next.Manifest.FormatVersion));
        }

        var text = File.ReadAllText(temp.PathOf(3, "manifest.json")).Replace("\"format_version\": 2", "\"format_version\": 1", StringComparison.Ordinal);
        RewriteManifest(temp.VersionDir(3), text);
        var verdict = await temp.Reader().VerifyAsync(3);
        Assert.Contains(verdict.Problems, p => p.Contains("reference.safetensors: format_version 1 has no shared files", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verification_checks_the_blob_exists_with_its_size_always_and_its_hash_when_full()
    {
        using var temp = new TempStore();
        var reference = SourceFile(temp, "reference.bin", 10_000, seed: 3);
        using (var store = await temp.OpenAsync())
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", reference));
        }
        var blob = BlobPath(temp, Sha256Hex(reference));
        var reader = temp.Reader();

        FlipByte(blob, 5000); // the version's link is the same inode: both are damaged
        Assert.True((await reader.VerifyAsync(1, CheckpointVerificationLevel.Quick)).IsValid);
        Assert.Contains((await reader.VerifyAsync(1)).Problems, p => p.StartsWith("reference.safetensors: sha256 mismatch", StringComparison.Ordinal));
        FlipByte(blob, 5000);

        // A blob that is another file than the version's (a copy fallback, or an operator's restore) is hashed on its own.
        var copy = blob + ".copy";
        File.Copy(blob, copy);
        File.Delete(blob);
        File.Move(copy, blob);
        Assert.True((await reader.VerifyAsync(1)).IsValid);
        FlipByte(blob, 10);
        Assert.Contains((await reader.VerifyAsync(1)).Problems, p => p.Contains("shared blob blobs/sha256/", StringComparison.Ordinal) && p.Contains("sha256 mismatch", StringComparison.Ordinal));

        File.WriteAllBytes(blob, new byte[10]);
        Assert.Contains((await reader.VerifyAsync(1, CheckpointVerificationLevel.Quick)).Problems, p => p.Contains("has 10 bytes, manifest says 10000", StringComparison.Ordinal));
        File.Delete(blob);
        Assert.Contains((await reader.VerifyAsync(1, CheckpointVerificationLevel.Quick)).Problems, p => p.Contains("is missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_writer_hashes_a_blob_once_and_a_damaged_blob_is_written_again_by_the_next_writer()
    {
        using var temp = new TempStore();
        var reference = SourceFile(temp, "reference.bin", 10_000, seed: 4);
        var blob = BlobPath(temp, Sha256Hex(reference));
        using (var store = await temp.OpenAsync())
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", reference));
            // Damage that keeps size and modification time: the writer, which hashed this blob when it wrote it, does not hash
            // it again on its own verifications (that is the point); another process's reader does.
            var modified = File.GetLastWriteTimeUtc(blob);
            FlipByte(blob, 100);
            File.SetLastWriteTimeUtc(blob, modified);
            Assert.True((await store.Reader.VerifyAsync(1)).IsValid);
            Assert.False((await temp.Reader().VerifyAsync(1)).IsValid);
        }

        using (var store = await temp.ReopenAsync())
        {
            // A new process hashes at load, refuses the damaged version, and rewrites the blob before linking it again.
            var loaded = await store.LoadLatestValidAsync();
            Assert.Null(loaded.Checkpoint);
            var next = await store.WriteAsync(Draft(2).ShareFile("reference.safetensors", reference));
            Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(next.GetPath("reference.safetensors")));
            Assert.True((await temp.Reader().VerifyAsync(next.Version)).IsValid);
        }
    }

    [Fact]
    public async Task Retention_removes_a_blob_once_no_remaining_version_references_it()
    {
        using var temp = new TempStore();
        var oldBase = SourceFile(temp, "old.bin", 3000, seed: 1);
        var newBase = SourceFile(temp, "new.bin", 3000, seed: 2);
        using var store = await temp.OpenAsync(keepLast: 2);
        await store.LoadLatestValidAsync();
        await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", oldBase));
        await store.WriteAsync(Draft(2).ShareFile("reference.safetensors", oldBase));
        await store.WriteAsync(Draft(3).ShareFile("reference.safetensors", newBase));
        Assert.Equal(new[] { Sha256Hex(oldBase), Sha256Hex(newBase) }.Order(StringComparer.Ordinal), BlobNames(temp));

        await store.WriteAsync(Draft(4).ShareFile("reference.safetensors", newBase)); // v2, the last to reference oldBase, goes
        Assert.Equal([3L, 4L], temp.Reader().ListVersions().ToArray());
        Assert.Equal([Sha256Hex(newBase)], BlobNames(temp));
        Assert.Contains(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Cleanup && e.Reason!.Contains(Sha256Hex(oldBase), StringComparison.Ordinal));
        foreach (var version in new long[] { 3, 4 }) Assert.True((await temp.Reader().VerifyAsync(version)).IsValid);
    }

    [Fact]
    public async Task A_version_whose_manifest_does_not_parse_keeps_every_blob()
    {
        using var temp = new TempStore();
        var oldBase = SourceFile(temp, "old.bin", 3000, seed: 1);
        var newBase = SourceFile(temp, "new.bin", 3000, seed: 2);
        using (var store = await temp.OpenAsync(keepLast: 10))
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", oldBase));
            await store.WriteAsync(Draft(2).ShareFile("reference.safetensors", newBase));
        }
        File.WriteAllText(temp.PathOf(1, "manifest.json"), "{ torn"); // what v1 references is unknown now
        using (await temp.ReopenAsync(keepLast: 10)) { }
        Assert.Equal(2, BlobNames(temp).Count);
    }

    [Fact]
    public async Task A_crash_after_a_blob_was_written_but_before_its_version_committed_leaves_an_unreferenced_blob_the_next_writer_removes()
    {
        using var temp = new TempStore();
        var reference = SourceFile(temp, "reference.bin", 2000, seed: 5);
        using (var store = await temp.OpenAsync())
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1));
            // The process dies inside the writer that follows the shared artefact: the blob is durable, the version is not.
            await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(Draft(2).ShareFile("reference.safetensors", reference)
                .AddFileAt("zz-killed.bin", (_, _) => throw new InvalidOperationException("process killed mid-checkpoint"))));
            Assert.Equal([Sha256Hex(reference)], BlobNames(temp));
        }
        Assert.Equal(1, (await temp.Reader().LoadLatestValidAsync()).Checkpoint!.Version);

        using (await temp.ReopenAsync()) { }
        Assert.Empty(BlobNames(temp));
        Assert.Contains(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Cleanup && e.Reason!.Contains(Sha256Hex(reference), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_crash_mid_blob_write_leaves_a_temp_file_that_the_next_writer_removes()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        var blobs = Path.Combine(temp.Root, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        var partial = Path.Combine(blobs, ".tmp-" + new string('a', 64) + "-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(partial, new byte[123]);

        using (await temp.ReopenAsync()) { }
        Assert.False(File.Exists(partial));
        Assert.Contains(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Cleanup && e.Reason!.Contains(".tmp-aaaa", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_crash_between_deleting_a_version_and_collecting_its_blobs_only_leaves_an_unreferenced_blob()
    {
        using var temp = new TempStore();
        var oldBase = SourceFile(temp, "old.bin", 3000, seed: 1);
        var newBase = SourceFile(temp, "new.bin", 3000, seed: 2);
        using (var store = await temp.OpenAsync(keepLast: 10))
        {
            await store.LoadLatestValidAsync();
            await store.WriteAsync(Draft(1).ShareFile("reference.safetensors", oldBase));
            await store.WriteAsync(Draft(2).ShareFile("reference.safetensors", newBase));
        }
        // Retention renamed v1 away and deleted it; the process died before the blob collection that follows.
        var doomed = Path.Combine(temp.Root, ".deleting-v000001-" + Guid.NewGuid().ToString("N"));
        Directory.Move(temp.VersionDir(1), doomed);
        Assert.Equal(2, BlobNames(temp).Count);
        Assert.True((await temp.Reader().VerifyAsync(2)).IsValid); // nothing a remaining version needs is missing

        using (await temp.ReopenAsync(keepLast: 10)) { }
        Assert.False(Directory.Exists(doomed));
        Assert.Equal([Sha256Hex(newBase)], BlobNames(temp));
        Assert.True((await temp.Reader().VerifyAsync(2)).IsValid);
    }

    private static string SourceFile(TempStore temp, string name, int size, int seed)
    {
        var directory = Path.Combine(temp.Root, "sources"); // beside the versions: the store ignores what it did not write
        Directory.CreateDirectory(directory);
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string BlobPath(TempStore temp, string sha256) => Path.Combine(temp.Root, "blobs", "sha256", sha256);

    private static IReadOnlyList<string> BlobNames(TempStore temp)
    {
        var directory = Path.Combine(temp.Root, "blobs", "sha256");
        return Directory.Exists(directory) ? Directory.GetFiles(directory).Select(Path.GetFileName).OfType<string>().Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList() : [];
    }

    /// <summary>st_nlink via stat(1): how many names the file's inode has.</summary>
    private static int LinkCount(string path)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
