using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Worker.Tests.Demo;

/// <summary>
/// The product's promise on a fresh machine: <c>prefonline run</c> with no Kafka learns from its simulated
/// users. The whole host runs in-process (embedded transport, tensor thread, guardrail, checkpoints,
/// /metrics); the test waits for a number of accepted updates — not for wall-clock time, so a slow machine
/// only makes it slower — then stops the host cleanly and reads the demo's own report.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class EmbeddedDemoTests(ITestOutputHelper output) : IDisposable
{
    private const int Updates = 8;
    private readonly string directory = Directory.CreateTempSubdirectory("prefonline-demo-").FullName;

    [Fact]
    public async Task TheDemoPolicyGetsBetterForItsUsersAndStopsCleanly()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Checkpoints:Directory"] = Path.Combine(directory, "checkpoints"),
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["PolicyDistribution:Port"] = "0", // the demo serves its policies on 127.0.0.1 too; never a fixed port in a test
            ["Demo:OutputDirectory"] = Path.Combine(directory, "report"),
            ["Demo:Console"] = "false",
            ["Demo:Duration"] = "00:00:00",           // until stopped: the test decides when
            ["Demo:Policy:FitSteps"] = "150",
            ["Worker:TensorThreads"] = "2",
            ["Logging:LogLevel:Default"] = "Warning",
        }).Build();
        var (settings, problems) = ConfigurationCheck.Check(configuration);
        Assert.Empty(problems);

        await using var app = WorkerHost.Build(configuration, settings);
        var status = app.Services.GetRequiredService<PipelineStatus>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        await app.StartAsync(deadline.Token);
        using var http = new HttpClient { BaseAddress = WorkerHost.Address(app) };

        while (status.Updates.Count < Updates)
        {
            deadline.Token.ThrowIfCancellationRequested();
            await Task.Delay(250, deadline.Token);
        }
        var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative), deadline.Token);
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), deadline.Token);
        await app.StopAsync(deadline.Token);

        Assert.True(ready.IsSuccessStatusCode, $"/readyz answered {(int)ready.StatusCode}: {await ready.Content.ReadAsStringAsync(deadline.Token)}");
        Assert.Contains("prefonline_policy_version", metrics, StringComparison.Ordinal);
        // The whole worker's scrape (every instrument of every stage, not a test host's) is valid exposition text.
        var promtool = ExternalTool.Require("promtool", "apt-get install -y --no-install-recommends prometheus");
        var (exit, stdout, stderr) = await ExternalTool.RunAsync(promtool, ["check", "metrics"], stdin: metrics);
        Assert.True(exit == 0 && (stdout + stderr).Trim() == "", $"promtool check metrics ({exit}): {stdout}{stderr}");
        Assert.True(app.Services.GetRequiredService<PipelineService>().Completed, "the final checkpoint was not written on stop");

        using var summary = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "report", DemoReport.SummaryFile), deadline.Token));
        var root = summary.RootElement;
        var before = root.GetProperty("reward_before").GetDouble();
        var after = root.GetProperty("reward_after").GetDouble();
        output.WriteLine($"users' reward {before:F3} -> {after:F3} after {root.GetProperty("updates").GetInt32()} updates, KL {root.GetProperty("kl_to_reference").GetDouble():F2}, rollbacks {root.GetProperty("rollbacks").GetInt32()}");
        Assert.True(root.GetProperty("updates").GetInt32() >= Updates);
        // Measured with the defaults (users prefer length:4): −2.10 → −0.68 after 8 updates (load 8 on 2 cores); a policy that did not learn stays near −2.
        Assert.True(after > before + 0.3, $"the users' reward did not improve enough: {before:F3} -> {after:F3}");
        Assert.True(File.Exists(Path.Combine(directory, "report", "reward-curve.svg")));
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DemoCollection
{
    public const string Name = "embedded demo (whole host, all cores)";
}
