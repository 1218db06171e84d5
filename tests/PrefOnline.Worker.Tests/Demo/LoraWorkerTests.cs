using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Serving;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace PrefOnline.Worker.Tests.Demo;

/// <summary>
/// The whole worker training LoRA (<c>Learner:Adapter:Rank=4</c>) on the tiny Llama policy of <c>prefonline init</c>, in
/// process with the embedded transport: only the adapter trains (the base in reference.safetensors stays the initial
/// policy bit for bit), a version holds the PEFT adapter and no merged weights (the base is a shared blob), consumers
/// (<c>prefonline generate</c> on the version or the store) load base + adapter merged, and a restart resumes the adapter
/// from the checkpoint. The reward model trains its own adapter and head on the same frozen base: a version holds those
/// (reward_adapter.safetensors), never a whole reward model, so its own bytes are a small fraction of the base's.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class LoraWorkerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("prefonline-lora-").FullName;

    [Fact]
    public async Task TheWorkerTrainsCheckpointsAndResumesALoraAdapter()
    {
        var run = new LlamaWorkerRun(directory, new Dictionary<string, string?>
        {
            // Large enough that one update moves B visibly away from zero.
            ["Learner:LearningRate"] = "0.01",
            ["Learner:Adapter:Rank"] = "4",
            ["Learner:Adapter:Alpha"] = "8",
        });
        var (initial, checkpoints) = (run.InitialPolicy, run.Checkpoints);
        Assert.Equal(ServingExportKind.Adapter, ConfigurationCheck.LearnerExportKind(run.Settings()));

        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
        var first = LatestVersion(checkpoints);
        var firstLearnerVersion = LearnerVersion(first);
        Assert.True(firstLearnerVersion >= 1, $"{first}: learner_version {firstLearnerVersion}");

        using (var scope = NewDisposeScope())
        {
            // The base never moved: reference.safetensors is the initial policy's weights, bitwise.
            using var initialPolicy = PolicyCheckpoint.LoadModel(initial);
            using var reference = PolicyCheckpoint.LoadWeightsFile(Path.Combine(first, StateFiles.Reference));
            AssertSameWeights(initialPolicy, reference, exact: true);

            // The adapter in PEFT's layout: r = 4, keys base_model.model.<path>.lora_A/B.weight, B trained away from zero.
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(first, PeftAdapter.ConfigFile)))!;
            Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
            Assert.Equal(4, config["r"]!.GetValue<int>());
            var adapterKeys = SafeTensorsFile.ReadHeader(Path.Combine(first, PeftAdapter.WeightsFile)).Entries.Select(e => e.Name).ToList();
            Assert.NotEmpty(adapterKeys);
            Assert.All(adapterKeys, k => Assert.Matches(@"^base_model\.model\..+\.lora_[AB]\.weight$", k));

            // No merged copy of the model per version: the adapter, and the base as a shared blob (one copy for every version).
            Assert.False(File.Exists(Path.Combine(first, StateFiles.Policy)));
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(first, "manifest.json")))!["files"]!;
            Assert.True(manifest[StateFiles.Reference]!["shared"]!.GetValue<bool>());
            Assert.Null(manifest[PeftAdapter.WeightsFile]!["shared"]);
            Assert.True(File.Exists(Path.Combine(checkpoints, "blobs", "sha256", manifest[StateFiles.Reference]!["sha256"]!.GetValue<string>())));

            // The reward model: its adapter and head only (its trunk is that same base), trained, loadable onto the base.
            Assert.False(File.Exists(Path.Combine(first, StateFiles.RewardModel)), "a LoRA version holds a whole reward.safetensors");
            var rewardKeys = SafeTensorsFile.ReadHeader(Path.Combine(first, StateFiles.RewardAdapter)).Entries.Select(e => e.Name).ToList();
            Assert.All(rewardKeys, k => Assert.Matches(@"(\.lora_[AB]\.weight|^score\.(weight|bias))$", k));
            Assert.Contains("score.weight", rewardKeys);
            using (var reward = RewardCheckpoint.LoadAdapter(Path.Combine(first, StateFiles.RewardAdapter), reference, new LoraOptions { Rank = 4, Alpha = 8 }))
                Assert.Contains(reward.Adapters!.Pairs(), p => p.B.abs().max().item<float>() > 0);
            // What a version held before: a whole reward model (and twice its size in AdamW moments) — over three times the base alone.
            var wholeReward = Path.Combine(directory, "whole-reward.safetensors");
            using (var whole = RewardModel.FromPolicy(reference, seed: 1)) RewardCheckpoint.Save(wholeReward, whole);
            var ownBytes = OwnBytes(first);
            var baseBytes = new FileInfo(Path.Combine(first, StateFiles.Reference)).Length;
            output.WriteLine($"{Path.GetFileName(first)}: own bytes {ownBytes} ({string.Join(", ", OwnFiles(first).Select(f => $"{f.Name} {f.Bytes}"))}); base {baseBytes}; a whole reward model {new FileInfo(wholeReward).Length}");
            Assert.True(ownBytes < baseBytes / 2, $"a LoRA version's own files take {ownBytes} bytes, the base {baseBytes}");

            // What `prefonline generate --checkpoint <version>` (and a generator) loads: exactly base + (α/r)·B·A, no lora tensor.
            using var loaded = PrefOnline.Worker.Checkpoints.StoredPolicy.Load(first);
            var published = loaded.Model;
            Assert.DoesNotContain(published.state_dict().Keys, k => k.Contains("lora", StringComparison.OrdinalIgnoreCase));
            var adapters = PeftAdapter.Load(first, reference);
            Assert.Contains(adapters.Pairs(), p => p.B.abs().max().item<float>() > 0);
            using var merged = reference.Copy();  // the base: the adapter's tensors are not in the state dict
            adapters.MergeInto(merged);
            AssertSameWeights(merged, published, exact: false);
            Assert.Throws<Xunit.Sdk.EqualException>(() => AssertSameWeights(initialPolicy, published, exact: true));
        }

        // A restart resumes from that checkpoint: the learner's count continues, the base is still the initial one.
        var firstBase = File.ReadAllBytes(Path.Combine(first, StateFiles.Reference));  // read now: retention (KeepLast) may delete the version during the next run
        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
        var second = LatestVersion(checkpoints);
        Assert.True(string.CompareOrdinal(Path.GetFileName(second), Path.GetFileName(first)) > 0, $"no new version after {first}");
        Assert.True(LearnerVersion(second) > firstLearnerVersion, $"{second}: learner_version {LearnerVersion(second)} did not continue from {firstLearnerVersion}");
        Assert.Equal(firstBase, File.ReadAllBytes(Path.Combine(second, StateFiles.Reference)));
        Assert.Single(Directory.GetFiles(Path.Combine(checkpoints, "blobs", "sha256")), f => new FileInfo(f).Length > 1 << 16); // the base, once
        using (var fromStore = PrefOnline.Worker.Checkpoints.StoredPolicy.Load(checkpoints)) // the store root: its latest version
            Assert.Equal(Path.GetFullPath(second), fromStore.Directory);
    }

    [Fact]
    public async Task With_an_initial_reward_model_a_lora_run_trains_it_whole_and_resumes_a_version_holding_reward_safetensors()
    {
        // The path a LoRA checkpoint of an older build (a whole reward.safetensors) takes on resume too.
        var rewardFile = Path.Combine(directory, "initial-reward.safetensors");
        var run = new LlamaWorkerRun(directory, new Dictionary<string, string?>
        {
            ["Learner:LearningRate"] = "0.01",
            ["Learner:Adapter:Rank"] = "4",
            ["Learner:Adapter:Alpha"] = "8",
            ["Model:InitialRewardModel"] = rewardFile,
        });
        using (var scope = NewDisposeScope())
        using (var initialPolicy = PolicyCheckpoint.LoadModel(run.InitialPolicy))
        using (var reward = RewardModel.FromPolicy(initialPolicy, seed: 11))
            RewardCheckpoint.Save(rewardFile, reward);

        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
        var first = LatestVersion(run.Checkpoints);
        Assert.True(File.Exists(Path.Combine(first, StateFiles.RewardModel)), $"{first} holds no whole reward model");
        Assert.False(File.Exists(Path.Combine(first, StateFiles.RewardAdapter)));
        Assert.True(File.Exists(Path.Combine(first, PeftAdapter.WeightsFile)));
        var firstLearnerVersion = LearnerVersion(first);   // read now: retention may delete the version during the next run

        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
        var second = LatestVersion(run.Checkpoints);
        Assert.True(LearnerVersion(second) > firstLearnerVersion, $"{second} did not resume from {first}");
        Assert.True(File.Exists(Path.Combine(second, StateFiles.RewardModel)));
    }

    [Fact]
    public async Task With_a_checkpoint_interval_the_updates_in_between_are_published_as_adapter_only_versions()
    {
        var run = new LlamaWorkerRun(directory, new Dictionary<string, string?>
        {
            ["Learner:LearningRate"] = "0.01",
            ["Learner:Adapter:Rank"] = "4",
            ["Learner:Adapter:Alpha"] = "8",
            ["Checkpoints:Interval"] = "2",
        });
        var checkpoints = run.Checkpoints;
        await run.RunUntilUpdatesAsync(3, TimeSpan.FromMinutes(5));

        // Every update is a version; every second one a checkpoint, the others publish-only: the adapter, its base and the
        // tokenizer (as links to the shared blobs), no learner state — and loadable like any version.
        var versions = Directory.GetDirectories(checkpoints, "v*").Order(StringComparer.Ordinal).ToList();
        var publishOnly = versions.Where(v => JsonNode.Parse(File.ReadAllText(Path.Combine(v, "manifest.json")))!["publish_only"]?.GetValue<bool>() == true).ToList();
        Assert.NotEmpty(publishOnly);
        Assert.Contains(versions, v => File.Exists(Path.Combine(v, StateFiles.Worker)) && string.CompareOrdinal(v, publishOnly[0]) > 0); // checkpoints go on after it
        foreach (var version in publishOnly)
        {
            var files = Directory.GetFiles(version).Select(Path.GetFileName).ToHashSet();
            Assert.Superset(new HashSet<string?> { PeftAdapter.ConfigFile, PeftAdapter.WeightsFile, StateFiles.Reference, "manifest.json", "manifest.sha256" }, files);
            Assert.DoesNotContain(StateFiles.Worker, files);
            Assert.DoesNotContain(StateFiles.LearnerOptimizer, files);
            using var loaded = PrefOnline.Worker.Checkpoints.StoredPolicy.Load(version);
        }
        // The stop's final checkpoint is a full one, and a restart resumes from it.
        var latest = Path.Combine(checkpoints, File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim());
        Assert.True(File.Exists(Path.Combine(latest, StateFiles.Worker)), $"{latest} is not a full checkpoint");
        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
    }

    /// <summary>The version's files that are its own (not links to shared blobs), with their sizes.</summary>
    private static List<(string Name, long Bytes)> OwnFiles(string version)
    {
        var files = JsonNode.Parse(File.ReadAllText(Path.Combine(version, "manifest.json")))!["files"]!.AsObject();
        return files.Where(f => f.Value!["shared"]?.GetValue<bool>() != true)
            .Select(f => (f.Key, new FileInfo(Path.Combine(version, f.Key)).Length)).OrderByDescending(f => f.Length).ToList();
    }

    private static long OwnBytes(string version) => OwnFiles(version).Sum(f => f.Bytes);

    private static string LatestVersion(string checkpoints) =>
        Directory.GetDirectories(checkpoints, "v*").Where(d => File.Exists(Path.Combine(d, StateFiles.Worker))).Max(StringComparer.Ordinal)
        ?? throw new InvalidOperationException($"no checkpoint version in {checkpoints}");

    private static long LearnerVersion(string version) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(version, StateFiles.Worker)))!["learner_version"]!.GetValue<long>();

    private static void AssertSameWeights(PolicyModel expected, PolicyModel actual, bool exact)
    {
        var actualWeights = actual.state_dict();
        foreach (var (name, tensor) in expected.state_dict())
        {
            var other = actualWeights[name];
            var same = tensor.shape.SequenceEqual(other.shape) && (exact ? tensor.eq(other).all().item<bool>() : tensor.allclose(other, rtol: 0, atol: 1e-6));
            Assert.Equal((name, true), (name, same));
        }
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
