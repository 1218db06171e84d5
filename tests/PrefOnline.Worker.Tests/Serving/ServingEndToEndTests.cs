using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Serving;

/// <summary>
/// The whole worker (<c>prefonline run</c>'s host, embedded transport and simulated users) with an sglang publisher pointed
/// at an in-test server and a directory publisher: the serving stack receives the versions as the worker learns them, in
/// order, the older version again after a rollback, and the watched directory's <c>current</c> is a loadable policy with the announced weights.
/// </summary>
[Collection(Demo.DemoCollection.Name)]
public sealed class ServingEndToEndTests : IDisposable
{
    private const int Versions = 2;
    private readonly string directory = CliProcess.TempDirectory("serving-e2e");

    [Fact]
    public async Task The_serving_stack_receives_each_version_as_the_worker_learns()
    {
        await using var server = await FakeServingServer.StartAsync();
        var volume = Path.Combine(directory, "volume");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Checkpoints:Directory"] = Path.Combine(directory, "checkpoints"),
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["PolicyDistribution:Port"] = "0",
            ["Demo:OutputDirectory"] = Path.Combine(directory, "report"),
            ["Demo:Console"] = "false",
            ["Demo:Duration"] = "00:00:00",
            ["Demo:Policy:FitSteps"] = "0", // no pre-fit: any policy will do, what matters is that versions follow
            ["Worker:TensorThreads"] = "2",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Serving:Publishers:0:Type"] = "sglang",
            ["Serving:Publishers:0:BaseUrl"] = server.Address.ToString(),
            ["Serving:Publishers:0:Directory"] = Path.Combine(directory, "sglang"),
            ["Serving:Publishers:0:ServerPath"] = "/models/prefonline",
            ["Serving:Publishers:1:Name"] = "volume",
            ["Serving:Publishers:1:Type"] = "directory",
            ["Serving:Publishers:1:Directory"] = volume,
            ["Serving:Publishers:1:KeepVersions"] = "1",
        }).Build();
        var (settings, problems) = ConfigurationCheck.Check(configuration);
        Assert.Empty(problems);

        await using var app = WorkerHost.Build(configuration, settings);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await app.StartAsync(deadline.Token);
        using var http = new HttpClient { BaseAddress = WorkerHost.Address(app) };
        await server.WaitForAsync(r => r.Select(x => x.Field("weight_version")).Distinct().Count() >= Versions, $"{Versions} versions at the server", TimeSpan.FromMinutes(8));
        var learned = VersionsAt(server);
        Assert.Equal(learned.Order(), learned); // in the order the learner published them
        Assert.Equal(learned.Count, learned.Distinct().Count()); // each once

        // An operator's rollback to `good` (an older version): the serving stack is handed that older version again.
        var rollback = await PrefOnline.Worker.Checkpoints.CheckpointStore.RequestRollbackAsync(Path.Combine(directory, "checkpoints"), null, "serving test", cancellationToken: deadline.Token);
        await server.WaitForAsync(r => VersionsAt(r).Skip(learned.Count).Any(v => v < learned[^1]), "the rolled-back-to version at the server", TimeSpan.FromMinutes(3));
        var ready = await http.GetStringAsync(new Uri("/readyz", UriKind.Relative), deadline.Token);
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), deadline.Token);
        await app.StopAsync(deadline.Token);

        Assert.True(rollback.To < learned[^1], $"rolled back to v{rollback.To}");
        Assert.All(server.Requests, r => Assert.Equal(("/update_weights_from_disk", $"/models/prefonline/v{long.Parse(r.Field("weight_version")!, System.Globalization.CultureInfo.InvariantCulture):D6}"), (r.Path, r.Field("model_path"))));
        Assert.Contains("serving-sglang", ready, StringComparison.Ordinal);
        Assert.Contains("serving-volume", ready, StringComparison.Ordinal);
        Assert.Contains("prefonline_serving_publish_total{publisher=\"sglang\",result=\"success\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("prefonline_serving_version{publisher=\"volume\"}", metrics, StringComparison.Ordinal);

        // The watched directory's current version: the weights the event announced, loadable as a policy.
        using var current = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(volume, "current.json"), deadline.Token));
        var weights = Path.Combine(volume, "current", "model.safetensors");
        Assert.Equal(current.RootElement.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(weights, deadline.Token))));
        Assert.Contains(current.RootElement.GetProperty("version").GetInt64(), VersionsAt(server));
        using var thread = new TensorThread("serving-e2e");
        var vocabulary = await thread.RunAsync(() =>
        {
            using var policy = PolicyCheckpoint.Load(Path.Combine(volume, "current"));
            return policy.Tokenizer.VocabularySize;
        }, deadline.Token);
        Assert.True(vocabulary > 0);
    }

    private static List<long> VersionsAt(FakeServingServer server) => VersionsAt(server.Requests);

    private static List<long> VersionsAt(IReadOnlyList<FakeServingServer.Request> requests) =>
        requests.Select(r => long.Parse(r.Field("weight_version")!, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
