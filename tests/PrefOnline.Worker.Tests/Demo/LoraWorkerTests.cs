using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Serving;
using static TorchSharp.torch;

namespace PrefOnline.Worker.Tests.Demo;

/// <summary>
/// The whole worker training LoRA (<c>Learner:Adapter:Rank=4</c>) on the tiny Llama policy of <c>prefonline init</c>, in
/// process with the embedded transport: only the adapter trains (the base in reference.safetensors stays the initial
/// policy bit for bit), a version holds the PEFT adapter beside the merged weights consumers load, and a restart resumes
/// the adapter from the checkpoint.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class LoraWorkerTests : IDisposable
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

            // policy.safetensors: no lora tensor, and exactly base + (α/r)·B·A.
            Assert.DoesNotContain(SafeTensorsFile.ReadHeader(Path.Combine(first, StateFiles.Policy)).Entries.Select(e => e.Name), k => k.Contains("lora", StringComparison.OrdinalIgnoreCase));
            using var published = PolicyCheckpoint.LoadWeightsFile(Path.Combine(first, StateFiles.Policy));
            var adapters = PeftAdapter.Load(first, reference);
            Assert.Contains(adapters.Pairs(), p => p.B.abs().max().item<float>() > 0);
            using var merged = reference.Copy();  // the base: the adapter's tensors are not in the state dict
            adapters.MergeInto(merged);
            AssertSameWeights(merged, published, exact: false);
            Assert.Throws<Xunit.Sdk.EqualException>(() => AssertSameWeights(initialPolicy, published, exact: true));
        }

        // A restart resumes from that checkpoint: the learner's count continues, the base is still the initial one.
        await run.RunUntilUpdatesAsync(1, TimeSpan.FromMinutes(5));
        var second = LatestVersion(checkpoints);
        Assert.True(string.CompareOrdinal(Path.GetFileName(second), Path.GetFileName(first)) > 0, $"no new version after {first}");
        Assert.True(LearnerVersion(second) > firstLearnerVersion, $"{second}: learner_version {LearnerVersion(second)} did not continue from {firstLearnerVersion}");
        Assert.Equal(File.ReadAllBytes(Path.Combine(first, StateFiles.Reference)), File.ReadAllBytes(Path.Combine(second, StateFiles.Reference)));
    }

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
