using System.Globalization;
using System.Text.Json.Nodes;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// <c>prefonline run</c> as a separate process: configured by a JSON file (the <c>--config</c> layer), its
/// checkpoint store and a free port of its own on 127.0.0.1; /metrics is read over HTTP like Prometheus does.
/// </summary>
public sealed class WorkerProcess
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private WorkerProcess(ChildProcess process, string checkpointDirectory, int port, int policyPort)
    {
        Process = process;
        CheckpointDirectory = checkpointDirectory;
        Port = port;
        PolicyPort = policyPort;
    }

    public ChildProcess Process { get; }

    public string CheckpointDirectory { get; }

    public int Port { get; }

    /// <summary>The port of the learner's policy files (PolicyDistribution:Port): a free one unless the configuration names one.</summary>
    public int PolicyPort { get; }

    public Uri MetricsUri => new($"http://127.0.0.1:{Port}/metrics");

    /// <summary>Writes <paramref name="configuration"/> to NAME.json in the scratch directory and starts the worker with it.</summary>
    public static WorkerProcess Start(TestWorkspace workspace, string name, JsonObject configuration, string checkpointDirectory, int? port = null, string? duration = null)
    {
        // A learner that serves policies (and the embedded demo) opens PolicyDistribution:Port too: never a fixed one in a test.
        var distribution = configuration["PolicyDistribution"] as JsonObject ?? new JsonObject();
        configuration["PolicyDistribution"] = distribution;
        if (distribution["Port"] is null) distribution["Port"] = TestWorkspace.FreePort();
        var policyPort = distribution["Port"]!.GetValue<int>();
        var configPath = workspace.ScratchPath(name + ".json");
        File.WriteAllText(configPath, configuration.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        File.Copy(configPath, Path.Combine(workspace.Logs, name + ".json"), overwrite: true);
        var chosenPort = port ?? TestWorkspace.FreePort();
        List<string> arguments = ["run", "--config", configPath, "--checkpoint-dir", checkpointDirectory, "--port", chosenPort.ToString(CultureInfo.InvariantCulture)];
        if (duration is not null) arguments.AddRange(["--duration", duration]);
        return new WorkerProcess(workspace.StartPrefOnline(name, arguments), checkpointDirectory, chosenPort, policyPort);
    }

    public async Task<string?> ScrapeAsync()
    {
        try
        {
            return await Http.GetStringAsync(MetricsUri);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null; // not listening yet, or gone
        }
    }

    /// <summary>GET /readyz: the status code and the body (null: not listening yet, or gone).</summary>
    public async Task<(System.Net.HttpStatusCode Status, string Body)?> ReadinessAsync()
    {
        try
        {
            using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{Port}/readyz"));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Waits until /readyz answers 200.</summary>
    public Task WaitReadyAsync(TimeSpan timeout) =>
        Poll.UntilAsync(async () => (await ReadinessAsync())?.Status == System.Net.HttpStatusCode.OK, timeout, $"{Process.Name} ready", () => Process.Tail());

    /// <summary>Sum of every series of <paramref name="name"/> whose labels include all of <paramref name="labels"/> (null: not exposed or no scrape).</summary>
    public async Task<double?> MetricAsync(string name, params (string Key, string Value)[] labels)
    {
        var text = await ScrapeAsync();
        return text is null ? null : PrometheusText.Sum(text, name, labels);
    }

    /// <summary>Waits until the learner is running (it logs this after loading its checkpoint and before reading input).</summary>
    public Task<OutputLine> WaitForLearnerAsync(TimeSpan timeout) => Process.WaitForLineAsync("Learner running (role all) from ", timeout);
}
