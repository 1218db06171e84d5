using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Serving;

/// <summary>
/// The <c>directory</c> export: a Hugging Face directory per version that appears whole or not at all, a <c>current</c>
/// symlink and <c>current.json</c> swapped atomically, retention, and output that <c>prefonline generate</c> and
/// <c>logprobs</c> load (the real binary); plus the start-up check of the <c>Serving</c> section.
/// </summary>
public sealed class DirectoryExportTests(ServingTestKit kit) : IClassFixture<ServingTestKit>
{
    [Fact]
    public async Task Each_version_is_a_whole_directory_current_moves_atomically_and_retention_keeps_the_newest()
    {
        var root = kit.NewDirectory("export");
        var exporter = new VersionExporter(root, keepVersions: 2, NullLogger.Instance);
        for (var version = 1; version <= 5; version++)
        {
            var export = await exporter.ExportAsync(kit.Full(version), CancellationToken.None);
            Assert.Equal(Path.Combine(root, $"v00000{version}"), export.Path);
            Assert.Equal(ServingExportKind.Full, export.Kind);
        }

        // Current plus the two newest others; no temp directory or link left behind.
        Assert.Equal(["current", "current.json", "v000003", "v000004", "v000005"], Directory.EnumerateFileSystemEntries(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("v000005", new FileInfo(Path.Combine(root, "current")).LinkTarget);
        using (var current = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(root, "current.json"))))
        {
            Assert.Equal(5, current.RootElement.GetProperty("version").GetInt64());
            Assert.Equal("v000005", current.RootElement.GetProperty("directory").GetString());
            Assert.Equal(kit.Full(5).Sha256, current.RootElement.GetProperty("sha256").GetString());
            Assert.Equal("full", current.RootElement.GetProperty("kind").GetString());
            Assert.Equal(kit.Full(5).Sha256, current.RootElement.GetProperty("files").GetProperty("model.safetensors").GetString());
        }
        var files = Directory.EnumerateFiles(Path.Combine(root, "v000005")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal([".prefonline-export.json", "config.json", "model.safetensors", "tokenizer_config.json"], files);
        // The weights are the announced bytes.
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(kit.Source, "policy.safetensors")), await File.ReadAllBytesAsync(Path.Combine(root, "v000005", "model.safetensors")));

        // A rollback to a kept version only moves the pointer (the directory is not written again), and keeps the newer ones.
        var before = File.GetLastWriteTimeUtc(Path.Combine(root, "v000003", "model.safetensors"));
        await exporter.ExportAsync(kit.Full(3, rolledBackFrom: 5), CancellationToken.None);
        Assert.Equal("v000003", new FileInfo(Path.Combine(root, "current")).LinkTarget);
        Assert.Equal(before, File.GetLastWriteTimeUtc(Path.Combine(root, "v000003", "model.safetensors")));
        Assert.True(Directory.Exists(Path.Combine(root, "v000005")) && Directory.Exists(Path.Combine(root, "v000004")));
        Assert.Equal((3L, kit.Full(3).Sha256), exporter.ReadCurrent());
    }

    [Fact]
    public async Task A_version_whose_files_do_not_match_the_event_is_refused_and_leaves_nothing_half_written()
    {
        var root = kit.NewDirectory("export");
        var exporter = new VersionExporter(root, keepVersions: 3, NullLogger.Instance);
        await exporter.ExportAsync(kit.Full(1), CancellationToken.None);

        // The event announces other weights than the checkpoint holds (a corrupted or replaced file).
        var good = kit.Full(2);
        var forged = good with { Event = kit.AdapterVersion(2).Event };
        var error = await Assert.ThrowsAsync<ServingHandOffException>(() => exporter.ExportAsync(forged with { Files = good.Files }, CancellationToken.None));
        Assert.False(error.Transient);

        Assert.False(Directory.Exists(Path.Combine(root, "v000002")));
        Assert.Equal("v000001", new FileInfo(Path.Combine(root, "current")).LinkTarget);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(root), e => Path.GetFileName(e).StartsWith('.'));

        // Leftovers of a crash mid-export are removed by the next process's first export; readers never saw them.
        Directory.CreateDirectory(Path.Combine(root, ".v000009.tmp-1-abc"));
        await new VersionExporter(root, keepVersions: 3, NullLogger.Instance).ExportAsync(kit.Full(2), CancellationToken.None);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(root), e => Path.GetFileName(e).StartsWith('.'));
        Assert.Equal("v000002", new FileInfo(Path.Combine(root, "current")).LinkTarget);
    }

    [Fact]
    public async Task The_current_export_loads_with_generate_and_logprobs_like_the_policy_itself()
    {
        var root = kit.NewDirectory("export");
        var exporter = new VersionExporter(root, keepVersions: 1, NullLogger.Instance);
        await exporter.ExportAsync(kit.Full(7), CancellationToken.None);
        var current = Path.Combine(root, "current");

        string[] Generate(string dir) => ["generate", "--checkpoint", dir, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--temperature", "0", "--seed", "1", "--json"];
        var exported = CliProcess.Run(Generate(current));
        Assert.True(exported.Code == 0, exported.Stderr);
        var original = CliProcess.Run(Generate(kit.InitDirectory));
        Assert.True(original.Code == 0, original.Stderr);
        Assert.Equal(Samples(original.Stdout), Samples(exported.Stdout));

        string[] LogProbs(string dir) => ["logprobs", "--checkpoint", dir, "--prompt", "Once upon", "--completion", " a time", "--eos"];
        var scored = CliProcess.Run(LogProbs(current));
        Assert.True(scored.Code == 0, scored.Stderr);
        var reference = CliProcess.Run(LogProbs(kit.InitDirectory));
        Assert.Equal(JsonDocument.Parse(reference.Stdout).RootElement.GetProperty("sum_logprob").GetDouble(),
            JsonDocument.Parse(scored.Stdout).RootElement.GetProperty("sum_logprob").GetDouble());

        static string Samples(string json) => JsonDocument.Parse(json).RootElement.GetProperty("samples").GetRawText();
    }

    [Fact]
    public async Task A_lora_version_exports_its_adapter_beside_a_link_to_its_base_exported_once_and_loads_with_generate()
    {
        var root = kit.NewDirectory("export");
        var exporter = new VersionExporter(root, keepVersions: 1, NullLogger.Instance);
        var first = await exporter.ExportAsync(kit.Lora(1), CancellationToken.None);
        Assert.Equal(ServingExportKind.Adapter, first.Kind);
        var baseSha = kit.Lora(1).Event.Files["reference.safetensors"];
        var baseName = "base-" + baseSha[..16];
        Assert.Equal([".prefonline-export.json", "adapter_config.json", "adapter_model.safetensors", "base", "tokenizer_config.json"],
            Directory.EnumerateFileSystemEntries(first.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("../" + baseName, new FileInfo(Path.Combine(first.Path, "base")).LinkTarget);
        var baseDirectory = Path.Combine(root, baseName);
        Assert.Equal([".prefonline-export.json", "config.json", "model.safetensors", "tokenizer_config.json"],
            Directory.EnumerateFiles(baseDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(kit.LoraSource, "reference.safetensors")), await File.ReadAllBytesAsync(Path.Combine(baseDirectory, "model.safetensors")));

        // Later versions on the same base link the same directory; it is written once and outlives retention of the versions.
        var written = File.GetLastWriteTimeUtc(Path.Combine(baseDirectory, "model.safetensors"));
        for (var version = 2; version <= 3; version++) await exporter.ExportAsync(kit.Lora(version), CancellationToken.None);
        Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(baseDirectory, "model.safetensors")));
        Assert.Equal([baseName, "current", "v000002", "v000003"], Directory.EnumerateDirectories(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // `generate` on the export (current → v000003) merges base + adapter: what `prefonline merge` writes, token for token.
        var merged = Path.Combine(kit.NewDirectory("merged"), "out");
        var merge = CliProcess.Run("merge", "--base", kit.InitDirectory, "--adapter", kit.LoraSource, "--out", merged);
        Assert.True(merge.Code == 0, merge.Stderr);
        string[] Generate(string dir) => ["generate", "--checkpoint", dir, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--temperature", "0", "--seed", "1", "--json"];
        var exported = CliProcess.Run(Generate(Path.Combine(root, "current")));
        Assert.True(exported.Code == 0, exported.Stderr);
        var expected = CliProcess.Run(Generate(merged));
        Assert.True(expected.Code == 0, expected.Stderr);
        var plain = CliProcess.Run(Generate(kit.InitDirectory));
        Assert.Equal(Samples(expected.Stdout), Samples(exported.Stdout));
        Assert.NotEqual(Samples(plain.Stdout), Samples(exported.Stdout)); // the adapter is applied, not dropped

        // A generator's verified copy of the version's files (adapter, base, tokenizer) loads the same way: base + adapter, merged.
        using (var thread = new PrefOnline.Tensors.TensorThread("lora-load"))
        {
            await thread.RunAsync(() =>
            {
                using var model = PrefOnline.Worker.Checkpoints.StoredPolicy.LoadWeights(kit.LoraSource);
                Assert.DoesNotContain(model.state_dict().Keys, k => k.Contains("lora", StringComparison.Ordinal));
            }, CancellationToken.None);
            var withoutBase = kit.NewDirectory("no-base");
            foreach (var name in new[] { "adapter_config.json", "adapter_model.safetensors" }) File.Copy(Path.Combine(kit.LoraSource, name), Path.Combine(withoutBase, name));
            var refused = await Assert.ThrowsAsync<PrefOnline.Learning.Models.Checkpoints.InvalidCheckpointException>(() =>
                thread.RunAsync(() => PrefOnline.Worker.Checkpoints.StoredPolicy.LoadWeights(withoutBase).Dispose(), CancellationToken.None));
            Assert.Contains("holds neither policy.safetensors nor a LoRA adapter", refused.Message, StringComparison.Ordinal);
        }

        // A full fine-tune's version after that: the base is no longer linked and goes with the next retention.
        await exporter.ExportAsync(kit.Full(4), CancellationToken.None);
        await exporter.ExportAsync(kit.Full(5), CancellationToken.None);
        Assert.False(Directory.Exists(baseDirectory));

        static string Samples(string json) => JsonDocument.Parse(json).RootElement.GetProperty("samples").GetRawText();
    }

    [Fact]
    public void The_Serving_section_is_checked_at_start_one_line_per_key()
    {
        static IReadOnlyList<string> Problems(Dictionary<string, string?> values) =>
            ConfigurationCheck.Check(new ConfigurationBuilder().AddInMemoryCollection(values).Build()).Problems;

        Assert.Empty(Problems(new() { ["Serving:Publishers:0:Type"] = "sglang", ["Serving:Publishers:0:Directory"] = "/tmp/x", ["Serving:Publishers:0:BaseUrl"] = "http://sglang:30000" }));

        var vllm = Problems(new() { ["Serving:Publishers:0:Type"] = "vllm", ["Serving:Publishers:0:Directory"] = "/tmp/x", ["Serving:Publishers:0:BaseUrl"] = "http://vllm:8000" });
        Assert.Equal("Serving:Publishers:0:Type vllm loads LoRA adapters through vLLM's runtime API, but this learner trains every weight (no LoRA adapter): use sglang or directory for full weights", Assert.Single(vllm));

        var typo = Problems(new() { ["Serving:Publishers:0:Type"] = "vlm", ["Serving:Publishers:0:Directory"] = "/tmp/x" });
        Assert.True(typo.Any(p => p.StartsWith("Serving:Publishers:0:Type: 'vlm' must be one of", StringComparison.Ordinal)), string.Join(" | ", typo));

        var many = Problems(new()
        {
            ["Serving:Publishers:0:Type"] = "sglang", ["Serving:Publishers:0:BaseUrl"] = "sglang:30000", ["Serving:Publishers:0:TokenFile"] = "/nonexistent/token",
            ["Serving:Publishers:1:Type"] = "directory", ["Serving:Publishers:1:Directory"] = "/tmp/y", ["Serving:Publishers:1:BaseUrl"] = "http://x",
            ["Serving:Publishers:1:Name"] = "sglang", ["Serving:MaxAttempts"] = "0",
        });
        Assert.Contains("Serving:MaxAttempts must be between 1 and 100 (got 0)", many);
        Assert.Contains(many, p => p.StartsWith("Serving:Publishers:0:Directory is required", StringComparison.Ordinal));
        Assert.Contains(many, p => p.StartsWith("Serving:Publishers:0:BaseUrl must be the server's absolute http:// or https:// URL", StringComparison.Ordinal));
        Assert.Contains("Serving:Publishers:0:TokenFile /nonexistent/token does not exist", many);
        Assert.Contains("Serving:Publishers:1:BaseUrl applies to vllm and sglang publishers only, not to directory", many);
        Assert.Contains(many, p => p.StartsWith("Serving:Publishers:1:Name 'sglang' names two publishers", StringComparison.Ordinal));

        var generator = Problems(new()
        {
            ["Kafka:BootstrapServers"] = "localhost:9092", ["Worker:Role"] = "generator",
            ["Serving:Publishers:0:Type"] = "directory", ["Serving:Publishers:0:Directory"] = "/tmp/x",
        });
        Assert.Contains(generator, p => p.StartsWith("Serving:Publishers is set, but Worker:Role generator publishes no policy versions", StringComparison.Ordinal));
    }
}
