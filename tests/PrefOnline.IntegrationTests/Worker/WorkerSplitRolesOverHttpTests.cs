using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Pipeline;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The Helm chart's default topology: a learner and a generator that share no files (the learner's volume is
/// ReadWriteOnce). The learner's policy events name its policy port (Worker:PolicyBaseUrl, its own port beside the
/// metrics port, bearer token required); the generator accepts only events that point there, downloads each new
/// version with the token, checks every file's SHA-256 and generates with it. (<see cref="WorkerSplitRolesTests"/>
/// covers the mounted-volume variant with file:// URIs.)
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerSplitRolesOverHttpTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_generator_follows_the_learners_policy_versions_over_http_without_a_shared_volume()
    {
        await using var cluster = WorkerCluster.Start();
        var policyPort = FreePort();
        var learnerUrl = $"http://127.0.0.1:{policyPort}";
        var tokenFile = Path.Combine(Path.GetTempPath(), $"prefonline-split-token-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(tokenFile, "split-roles-token-0123456789");
        try
        {
            await using var learner = await WorkerUnderTest.StartAsync(cluster, output, new Dictionary<string, string?>
            {
                ["Worker:Role"] = "learner",
                ["Worker:PolicyBaseUrl"] = learnerUrl,
                ["PolicyDistribution:Port"] = policyPort.ToString(CultureInfo.InvariantCulture),
                ["PolicyDistribution:TokenFile"] = tokenFile,
                ["Scoring:LabelWait"] = "00:00:00", // no users here: the reward model scores at once
            });
            await using var generator = await WorkerUnderTest.StartAsync(cluster, output, new Dictionary<string, string?>
            {
                ["Worker:Role"] = "generator",
                ["Worker:PolicyBaseUrl"] = learnerUrl,
                ["PolicyDistribution:TokenFile"] = tokenFile,
            });
            await RunAsync(cluster, learner, generator, learnerUrl);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    private async Task RunAsync(WorkerCluster cluster, WorkerUnderTest learner, WorkerUnderTest generator, string learnerUrl)
    {
        await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
        for (var i = 0; i < 400; i++)
            cluster.Produce(Prompts, i % InputPartitions, new PromptRecord($"split-http-{i:D3}", WorkerEndToEndTests.Questions[i % WorkerEndToEndTests.Questions.Length]));

        var learnerStatus = learner.App.Services.GetRequiredService<PipelineStatus>();
        var generatorStatus = generator.App.Services.GetRequiredService<PipelineStatus>();
        await policy.WaitForAsync(records =>
        {
            learner.AssertRunning();
            generator.AssertRunning();
            return generatorStatus.PolicyVersion >= 3 && WorkerEndToEndTests.PolicyEvents(records).Count >= 3;
        }, WorkerEndToEndTests.Deadline, "three policy events and the generator generating with policy v3 or later");
        output.WriteLine($"learner at v{learnerStatus.PolicyVersion}, generator generating with v{generatorStatus.PolicyVersion}");

        await generator.StopAsync();
        await learner.StopAsync();
        Assert.True(learnerStatus.PolicyVersion >= generatorStatus.PolicyVersion);
        Assert.False(Directory.Exists(generator.CheckpointDirectory), "a generator must not write checkpoints");
        var events = WorkerEndToEndTests.PolicyEvents(policy.Records);
        Assert.True(events.Count >= 3, $"{events.Count} policy events");
        Assert.All(events.Skip(1), e => Assert.StartsWith($"{learnerUrl}/policy/", e.Uri, StringComparison.Ordinal));
        // Every event hashes the weights and the tokenizer files the generator loaded with them.
        Assert.All(events, e => Assert.Equal(["policy.safetensors", "tokenizer_config.json"], e.Files.Keys.Where(k => k != "config.json").Order(StringComparer.Ordinal)));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
