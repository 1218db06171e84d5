using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Learning.Models;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Cli;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;

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
        var policy = Path.Combine(directory, "policy");
        InitCommand.Write(policy, InitCommand.Shape("llama", "tiny"), seed: 5);
        var checkpoints = Path.Combine(directory, "checkpoints");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Model:InitialPolicy"] = policy,
            ["Checkpoints:Directory"] = checkpoints,
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["PolicyDistribution:Port"] = "0",
            ["Demo:OutputDirectory"] = Path.Combine(directory, "report"),
            ["Demo:Console"] = "false",
            ["Demo:Duration"] = "00:00:00",
            ["Worker:TensorThreads"] = "2",
            // Small updates often: the point is every stage on the Llama trunk, not learning (a random init samples
            // near-uniform bytes, so completions run to MaxNewTokens).
            ["Generation:MaxNewTokens"] = "12",
            ["Learner:UpdateEverySamples"] = "16",
            ["Learner:BatchSize"] = "16",
            ["Learner:HumanPairsPerUpdate"] = "8",
            ["Learner:UpdateInterval"] = "00:00:02",
            ["Logging:LogLevel:Default"] = "Warning",
        }).Build();
        var (settings, problems) = ConfigurationCheck.Check(configuration);
        Assert.Empty(problems);

        await using var app = WorkerHost.Build(configuration, settings);
        var status = app.Services.GetRequiredService<PipelineStatus>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await app.StartAsync(deadline.Token);
        using var http = new HttpClient { BaseAddress = WorkerHost.Address(app) };
        while (status.Updates.Count < Updates)
        {
            deadline.Token.ThrowIfCancellationRequested();
            await Task.Delay(250, deadline.Token);
        }
        var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative), deadline.Token);
        await app.StopAsync(deadline.Token);

        Assert.True(ready.IsSuccessStatusCode, $"/readyz answered {(int)ready.StatusCode}: {await ready.Content.ReadAsStringAsync(deadline.Token)}");
        Assert.True(app.Services.GetRequiredService<PipelineService>().Completed, "the final checkpoint was not written on stop");
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
