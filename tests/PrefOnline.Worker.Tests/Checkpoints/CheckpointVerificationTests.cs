using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>Every kind of damage is detected, named in the reason, and refused by LoadAsync.</summary>
public sealed class CheckpointVerificationTests
{
    private static async Task<CheckpointVerification> DamageAndVerifyAsync(Action<TempStore> damage, CheckpointVerificationLevel level = CheckpointVerificationLevel.Full)
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        Assert.True((await temp.Reader().VerifyAsync(1)).IsValid);
        damage(temp);
        var verdict = await temp.Reader().VerifyAsync(1, level);
        var refused = await Assert.ThrowsAsync<CheckpointCorruptException>(() => temp.Reader().LoadAsync(1));
        Assert.Equal(1, refused.Version);
        Assert.Contains("v000001", refused.Message);
        Assert.False(verdict.IsValid);
        return verdict;
    }

    [Fact]
    public async Task A_flipped_byte_is_a_sha256_mismatch_naming_the_file()
    {
        var verdict = await DamageAndVerifyAsync(t => FlipByte(t.PathOf(1, "policy.safetensors"), 1000));
        Assert.Contains("policy.safetensors: sha256 mismatch", Assert.Single(verdict.Problems));
    }

    [Fact]
    public async Task A_flipped_byte_is_not_seen_by_a_quick_check_but_by_a_full_one()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        FlipByte(temp.PathOf(1, "optimizer.safetensors"), 0);
        Assert.True((await temp.Reader().VerifyAsync(1, CheckpointVerificationLevel.Quick)).IsValid);
        Assert.False((await temp.Reader().VerifyAsync(1, CheckpointVerificationLevel.Full)).IsValid);
    }

    [Fact]
    public async Task A_truncated_file_is_a_size_mismatch_even_in_a_quick_check()
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            using var file = new FileStream(t.PathOf(1, "optimizer.safetensors"), FileMode.Open);
            file.SetLength(100);
        }, CheckpointVerificationLevel.Quick);
        Assert.Equal("optimizer.safetensors: size 100 bytes, manifest says 2048", Assert.Single(verdict.Problems));
    }

    [Fact]
    public async Task A_deleted_file_is_missing()
    {
        var verdict = await DamageAndVerifyAsync(t => File.Delete(t.PathOf(1, "replay.jsonl")));
        Assert.Equal("replay.jsonl: missing", Assert.Single(verdict.Problems));
    }

    [Fact]
    public async Task A_stray_file_or_directory_or_symlink_is_unexpected()
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            File.WriteAllText(t.PathOf(1, "extra.bin"), "x");
            Directory.CreateDirectory(t.PathOf(1, "nested"));
            File.CreateSymbolicLink(t.PathOf(1, "link.bin"), t.PathOf(1, "replay.jsonl"));
        });
        Assert.Contains("extra.bin: unexpected file (not in the manifest)", verdict.Problems);
        Assert.Contains("nested/: unexpected directory", verdict.Problems);
        Assert.Contains(verdict.Problems, p => p.StartsWith("link.bin: is a symbolic link", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_replaced_artefact_behind_a_symlink_is_refused()
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            var target = t.PathOf(1, "policy.safetensors");
            File.Copy(target, target + ".orig");
            File.Delete(target);
            File.CreateSymbolicLink(target, Path.GetFileName(target) + ".orig");
        });
        Assert.Contains(verdict.Problems, p => p.StartsWith("policy.safetensors: is a symbolic link", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{ this is not json")]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    public async Task An_unparseable_manifest_is_refused(string content)
    {
        var verdict = await DamageAndVerifyAsync(t => RewriteManifest(t.VersionDir(1), content));
        Assert.StartsWith("manifest.json: not a valid manifest", Assert.Single(verdict.Problems));
        Assert.Null(verdict.Manifest);
    }

    [Fact]
    public async Task A_missing_manifest_is_refused()
    {
        var verdict = await DamageAndVerifyAsync(t => File.Delete(t.PathOf(1, "manifest.json")));
        Assert.Equal("manifest.json: missing", Assert.Single(verdict.Problems));
    }

    [Theory]
    [InlineData("\"version\": 1", "\"version\": 2", "says version 2 but lives in v000001")]
    [InlineData("\"format_version\": 2", "\"format_version\": 3", "format_version 3 is not supported")]
    [InlineData("\"parent\": null", "\"parent\": 1", "parent 1 is not an older version")]
    [InlineData("\"format_version\": 2", "\"format_version\": 2, \"extra\": 1", "not a valid manifest")]
    [InlineData("\"format_version\": 2,", "", "not a valid manifest")]
    [InlineData("\"config_hash\"", "\"version\": 1, \"config_hash\"", "not a valid manifest")]
    public async Task An_edited_manifest_is_refused(string find, string replace, string expected)
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            var text = File.ReadAllText(t.PathOf(1, "manifest.json"));
            Assert.Contains(find, text);
            RewriteManifest(t.VersionDir(1), text.Replace(find, replace));
        });
        Assert.Contains(verdict.Problems, p => p.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_manifest_hash_edited_to_match_nothing_is_refused()
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            var sha = Sha256Hex(t.PathOf(1, "replay.jsonl"));
            RewriteManifest(t.VersionDir(1), File.ReadAllText(t.PathOf(1, "manifest.json")).Replace(sha, new string('0', 64)));
        });
        Assert.Contains("replay.jsonl: sha256 mismatch", Assert.Single(verdict.Problems));
    }

    [Fact]
    public async Task A_flipped_digit_in_the_manifest_offsets_is_caught_by_its_checksum()
    {
        var verdict = await DamageAndVerifyAsync(t =>
        {
            var path = t.PathOf(1, "manifest.json");
            var text = File.ReadAllText(path);
            Assert.Contains("\"0\": 100,", text);
            File.WriteAllText(path, text.Replace("\"0\": 100,", "\"0\": 180,")); // still valid JSON, wrong offset
        });
        Assert.Equal("manifest.json: sha256 mismatch with manifest.sha256 (the manifest was edited or damaged)", Assert.Single(verdict.Problems));
        Assert.Null(verdict.Manifest); // an unverified manifest is not trusted, not even for its parent
    }

    [Fact]
    public async Task A_missing_or_garbled_manifest_checksum_is_refused()
    {
        var missing = await DamageAndVerifyAsync(t => File.Delete(t.PathOf(1, "manifest.sha256")));
        Assert.Equal("manifest.sha256: missing", Assert.Single(missing.Problems));
        var garbled = await DamageAndVerifyAsync(t => File.WriteAllText(t.PathOf(1, "manifest.sha256"), "hello"));
        Assert.Equal("manifest.sha256: not a sha256sum line", Assert.Single(garbled.Problems));
    }

    [Fact]
    public async Task The_manifest_checksum_is_what_sha256sum_checks()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        var check = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sha256sum", "-c manifest.sha256")
        {
            WorkingDirectory = temp.VersionDir(1),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = await check.StandardOutput.ReadToEndAsync();
        await check.WaitForExitAsync();
        Assert.Equal(0, check.ExitCode);
        Assert.Equal("manifest.json: OK\n", output);
    }

    [Fact]
    public async Task A_version_that_does_not_exist_is_reported_as_such()
    {
        using var temp = new TempStore();
        var verdict = await temp.Reader().VerifyAsync(42);
        Assert.Equal("v000042 does not exist", Assert.Single(verdict.Problems));
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => temp.Reader().LoadAsync(42));
    }

    [Theory]
    [InlineData("v7")]
    [InlineData("garbage")]
    [InlineData("")]
    [InlineData("../v000001")]
    public async Task A_pointer_that_names_no_version_is_a_problem_not_a_crash(string content)
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 1)) { }
        WritePointer(temp.Root, "latest", content);
        var pointers = temp.Reader().ReadPointers();
        Assert.Null(pointers.Latest);
        Assert.Contains("'latest' pointer does not name a version", Assert.Single(pointers.Problems));
    }

    [Fact]
    public async Task A_hand_edited_pointer_with_a_byte_order_mark_and_whitespace_still_reads()
    {
        using var temp = new TempStore();
        using (await OpenWithVersionsAsync(temp, 2)) { }
        File.WriteAllText(Path.Combine(temp.Root, "latest"), "  v000001 \r\n", System.Text.Encoding.UTF8); // Encoding.UTF8 writes a BOM
        Assert.Equal(0xEF, File.ReadAllBytes(Path.Combine(temp.Root, "latest"))[0]);
        Assert.Equal(1, temp.Reader().ReadPointers().Latest);
        Assert.Equal(1, (await temp.Reader().LoadLatestValidAsync()).Checkpoint!.Version);
    }

    [Fact]
    public void Version_names_are_canonical()
    {
        Assert.Equal("v000007", CheckpointVersion.DirectoryName(7));
        Assert.Equal("v1234567", CheckpointVersion.DirectoryName(1_234_567));
        Assert.True(CheckpointVersion.TryParseDirectoryName("v000007", out var seven) && seven == 7);
        Assert.True(CheckpointVersion.TryParseDirectoryName("v1234567", out var big) && big == 1_234_567);
        foreach (var bad in new[] { "v7", "v0000007", "v000000", "v00000x", "000007", "v000007.bak", "V000007", "v-00007" })
            Assert.False(CheckpointVersion.TryParseDirectoryName(bad, out _), bad);
        foreach (var (text, expected) in new[] { ("7", 7L), ("v7", 7L), ("v000007", 7L), (" 12 ", 12L) })
            Assert.True(CheckpointVersion.TryParse(text, out var v) && v == expected, text);
        foreach (var bad in new[] { "0", "-1", "v", "", "seven", "1e3", "99999999999999999999" })
            Assert.False(CheckpointVersion.TryParse(bad, out _), bad);
    }
}
