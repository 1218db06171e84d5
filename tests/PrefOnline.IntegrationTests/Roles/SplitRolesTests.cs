using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Streaming.Kafka.Mock;
using PrefOnline.Torch;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Roles;

/// <summary>
/// The Helm chart's default topology, in one process: a learner and a generator, each a whole
/// <c>prefonline run</c> host with its role, against librdkafka's mock cluster, sharing no files. The
/// generator reads prompts and publishes rollouts; the learner scores them, updates, checkpoints and
/// publishes policy events naming its own /policy URL (Worker:PolicyBaseUrl); the generator downloads
/// each new version and generates with it.
/// </summary>
[Collection(Streaming.KafkaCollection.Name)]
public sealed class SplitRolesTests(ITestOutputHelper output) : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("prefonline-split-").FullName;

    [Fact]
    public async Task TheGeneratorFollowsTheLearnersPolicyVersionsOverHttpWithoutASharedVolume()
    {
        using var cluster = MockKafkaCluster.Start();
        foreach (var (topic, partitions) in new[] { ("prefonline.prompts", 2), ("prefonline.feedback", 2), ("prefonline.rollouts", 2), ("prefonline.policy", 1), ("prefonline.dlq", 1) })
            cluster.CreateTopic(topic, partitions);
        var initial = Path.Combine(directory, "initial");
        using (var thread = new TensorThread("init"))
            await thread.RunAsync(() =>
            {
                using var model = PolicyModel.Create(Gpt2Config.Preset("tiny"), 11);
                PolicyCheckpoint.Save(initial, model, ByteTokenizer.Instance);
            }, CancellationToken.None);

        var learnerPort = FreePort();
        var common = new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:ConsumerGroup"] = "split",
            ["Model:InitialPolicy"] = initial,
            ["Observability:BindAddress"] = "127.0.0.1",
            ["Generation:MaxNewTokens"] = "12",
            ["Generation:SamplesPerPrompt"] = "4",
            ["Scoring:LabelWait"] = "00:00:00",           // no users here: the reward model scores at once
            ["Learner:UpdateEverySamples"] = "16",
            ["Learner:MinSamples"] = "8",
            ["Learner:BatchSize"] = "16",
            ["Learner:MaxSamplesAhead"] = "64",
            ["Worker:TensorThreads"] = "1",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        await using var learner = Host(common, new()
        {
            ["Worker:Role"] = "Learner",
            ["Observability:Port"] = learnerPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Checkpoints:Directory"] = Path.Combine(directory, "learner-checkpoints"),
            ["Worker:PolicyBaseUrl"] = $"http://127.0.0.1:{learnerPort}",
        });
        await using var generator = Host(common, new()
        {
            ["Worker:Role"] = "Generator",
            ["Observability:Port"] = "0",
            ["Checkpoints:Directory"] = Path.Combine(directory, "generator-has-no-checkpoints"),
        });
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await learner.StartAsync(deadline.Token);
        await generator.StartAsync(deadline.Token);

        ProduceRaw(cluster.BootstrapServers, "prefonline.prompts", Enumerable.Range(0, 400).Select(i =>
            ((byte[]?)Encoding.UTF8.GetBytes($"p{i}"), Encoding.UTF8.GetBytes($$"""{"schema":"prefonline.prompt.v1","id":"split-p{{i}}","prompt":"question {{i % 7}}:"}"""))));

        var learnerStatus = learner.Services.GetRequiredService<PipelineStatus>();
        var generatorStatus = generator.Services.GetRequiredService<PipelineStatus>();
        while (generatorStatus.PolicyVersion < 3)
        {
            deadline.Token.ThrowIfCancellationRequested();
            await Task.Delay(200, deadline.Token);
        }
        output.WriteLine($"learner at v{learnerStatus.PolicyVersion}, generator generating with v{generatorStatus.PolicyVersion}");

        await generator.StopAsync(deadline.Token);
        await learner.StopAsync(deadline.Token);
        Assert.True(learnerStatus.PolicyVersion >= generatorStatus.PolicyVersion);
        Assert.False(Directory.Exists(Path.Combine(directory, "generator-has-no-checkpoints")), "a generator must not write checkpoints");
        var events = ReadAll(cluster.BootstrapServers, "prefonline.policy", 1, expected: 3);
        Assert.All(events.Skip(1), e => Assert.Contains($"http://127.0.0.1:{learnerPort}/policy/", Encoding.UTF8.GetString(e.Message.Value), StringComparison.Ordinal));
    }

    private static WebApplication Host(Dictionary<string, string?> common, Dictionary<string, string?> role)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(common).AddInMemoryCollection(role).Build();
        var (settings, problems) = ConfigurationCheck.Check(configuration);
        Assert.Empty(problems);
        return WorkerHost.Build(configuration, settings);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
