using System.Text.Json.Nodes;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Worker.Tests.Demo;

/// <summary>
/// The whole worker on a Llama-family policy: <c>prefonline init --arch llama</c>'s checkpoint as
/// Model:InitialPolicy, the embedded transport's simulated users, and the host running in-process until a
/// few updates are accepted — generation (TorchSharp decoder with a KV cache), the frozen reference, the
/// reward model on a Llama trunk, the learner and checkpoints all on the Llama trunk.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class LlamaWorkerTests : IDisposable
{
    private const int Updates = 2;
    private readonly string directory = Directory.CreateTempSubdirectory("prefonline-llama-").FullName;

    [Fact]
    public async Task TheWorkerTrainsALlamaPolicyWrittenByInit()
    {
        var run = new LlamaWorkerRun(directory);
        var checkpoints = run.Checkpoints;
        var (ready, body) = await run.RunUntilUpdatesAsync(Updates, TimeSpan.FromMinutes(10));
        Assert.True(ready, $"/readyz: {body}");

        // The checkpoints hold the Llama policy: every weights file names model_type llama in its config metadata.
        var weights = Directory.GetFiles(checkpoints, "*.safetensors", SearchOption.AllDirectories);
        Assert.NotEmpty(weights);
        var policyFiles = weights.Select(f => SafeTensorsFile.ReadHeader(f))
            .Where(h => h.Metadata.ContainsKey("prefonline.config"))
            .Select(h => JsonNode.Parse(h.Metadata["prefonline.config"])!["model_type"]!.GetValue<string>())
            .ToList();
        Assert.NotEmpty(policyFiles);
        Assert.All(policyFiles, t => Assert.Equal("llama", t));

        // A store's root (its latest version) and a version directory are checkpoints generate and logprobs read.
        foreach (var path in new[] { checkpoints, Directory.GetDirectories(checkpoints, "v*").Order(StringComparer.Ordinal).Last() })
        {
            var generate = ModelVerbs.CliProcess.Run("generate", "--checkpoint", path, "--prompt", "Q: How are you?", "--seed", "1", "--max-new-tokens", "4", "--json");
            Assert.True(generate.Code == 0, $"generate --checkpoint {path}: {generate.Stderr}");
            Assert.NotEmpty(JsonNode.Parse(generate.Stdout)!["samples"]!.AsArray());
            var logprobs = ModelVerbs.CliProcess.Run("logprobs", "--checkpoint", path, "--prompt", "Q:", "--completion", " fine");
            Assert.True(logprobs.Code == 0, $"logprobs --checkpoint {path}: {logprobs.Stderr}");
            Assert.True(JsonNode.Parse(logprobs.Stdout)!["sum_logprob"]!.GetValue<double>() < 0, logprobs.Stdout);
        }
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
