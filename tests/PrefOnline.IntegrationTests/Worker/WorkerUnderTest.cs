using PrefOnline.IntegrationTests.Process;
using PrefOnline.Tensors;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using Xunit.Abstractions;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The whole worker in this process: <see cref="WorkerHost.Build"/> (Kestrel on 127.0.0.1, the Kafka
/// transport, the learner pipeline of role all) configured through <see cref="WorkerConfiguration.Build"/>'s
/// in-memory overrides with a small, fast, seeded setup, plus what the tests read from outside: /readyz,
/// /metrics and the checkpoint store on disk.
/// </summary>
public sealed class WorkerUnderTest : IAsyncDisposable
{
    public static readonly TimeSpan UpdateInterval = TimeSpan.FromSeconds(2);

    private readonly HttpClient http;
    private readonly Dictionary<long, CheckpointManifest> manifests = [];
    private bool stopped;

    private readonly bool ownsRoot;

    private WorkerUnderTest(WebApplication app, string root, string checkpoints, bool ownsRoot)
    {
        App = app;
        Root = root;
        this.ownsRoot = ownsRoot;
        CheckpointDirectory = checkpoints;
        http = new HttpClient { BaseAddress = WorkerHost.Address(app), Timeout = TimeSpan.FromSeconds(10) };
    }

    public WebApplication App { get; }

    public string Root { get; }

    public string CheckpointDirectory { get; }

    public PipelineService Pipeline => App.Services.GetRequiredService<PipelineService>();

    public ExitStatus Exit => App.Services.GetRequiredService<ExitStatus>();

    /// <summary>True once the host began stopping (a fatal pipeline error stops it; tests stop it only at the end).</summary>
    public bool Stopping => App.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested;

    /// <summary>The consumer groups the learner uses (LearnerEpoch: {group}.generators for prompts, {group}.feedback for labels).</summary>
    public const string PromptGroup = "prefonline.generators";
    public const string FeedbackGroup = "prefonline.feedback";

    /// <summary>
    /// A 2-layer byte-level GPT (≈0.1M parameters), K = 2 samples of at most 8 tokens, an update every 8 fresh
    /// rollouts or <see cref="UpdateInterval"/>, a checkpoint at least every second, the label audit on, one
    /// libtorch thread, every seed fixed. <paramref name="overrides"/> are applied last.
    /// </summary>
    /// <param name="root">
    /// An earlier worker's <see cref="Root"/> to restart on its checkpoints (the caller deletes it); null: a new
    /// directory, deleted on dispose.
    /// </param>
    /// <param name="services">Extra service registrations (e.g. a <see cref="CheckpointIoPipeline"/> that injects faults).</param>
    /// <param name="initialPolicy">Writes the initial policy into the directory it is given (default: <see cref="CreateInitialPolicyAsync"/>).</param>
    public static async Task<WorkerUnderTest> StartAsync(WorkerCluster cluster, ITestOutputHelper output, IReadOnlyDictionary<string, string?>? overrides = null, string? root = null,
                                                         Action<IServiceCollection>? services = null, Func<string, Task>? initialPolicy = null)
    {
        var ownsRoot = root is null;
        root ??= Path.Combine(Path.GetTempPath(), "prefonline-worker-it-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var policy = Path.Combine(root, "initial-policy");
        if (!Directory.Exists(policy)) await (initialPolicy ?? CreateInitialPolicyAsync)(policy);
        var checkpoints = Path.Combine(root, "checkpoints");

        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft"] = "Warning",
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:ConsumerGroup"] = "prefonline",
            ["Kafka:DeliveryTimeout"] = "00:00:10", // within every test's Worker:ShutdownTimeout (checked at start)
            ["Kafka:ConsumerSettings:session.timeout.ms"] = "6000",
            ["Kafka:ConsumerSettings:heartbeat.interval.ms"] = "500",
            ["Model:InitialPolicy"] = policy,
            ["Model:Seed"] = "11",
            ["Worker:TensorThreads"] = "1",
            ["Worker:CheckpointInterval"] = "00:00:01",
            ["Worker:ShutdownTimeout"] = "00:00:30",
            ["Worker:AuditAbsorbedLabels"] = "true",
            ["Worker:StagingDirectory"] = Path.Combine(root, "staging"),
            ["Checkpoints:Directory"] = checkpoints,
            ["Checkpoints:KeepLast"] = "10000", // the audit chain is followed through every version
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["Observability:ReadinessInterval"] = "00:00:01",
            ["PolicyDistribution:Port"] = "0", // a learner with Worker:PolicyBaseUrl serves its policies: never on a fixed port in a test
            ["PolicyDistribution:DownloadDirectory"] = Path.Combine(root, "policy-downloads"),
            ["Generation:SamplesPerPrompt"] = "2",
            ["Generation:MaxNewTokens"] = "8",
            ["Generation:MaxPromptsPerBatch"] = "8",
            ["Generation:Seed"] = "7",
            ["Learner:UpdateEverySamples"] = "8",
            ["Learner:UpdateInterval"] = UpdateInterval.ToString("c", CultureInfo.InvariantCulture),
            ["Learner:MinSamples"] = "2",
            ["Learner:BatchSize"] = "16",
            ["Learner:HumanPairsPerUpdate"] = "4",
            ["Learner:InnerSteps"] = "1",
            ["Learner:MaxSamplesAhead"] = "64",
            ["Learner:Seed"] = "13",
            ["Scoring:LabelWait"] = "00:00:03",
            ["Scoring:Tick"] = "00:00:00.100",
            ["Reward:BatchSize"] = "4",
            ["Reward:Seed"] = "17",
            ["Replay:Seed"] = "19",
            // Learning quality is not under test here; a tripped guardrail rolling back would make the
            // policy versions of these tests depend on a tiny random model's KL (the rollback path has its own tests).
            ["Guardrails:Action"] = "Alert",
        };
        foreach (var (key, value) in WorkerCluster.FastReconnect()) settings[$"Kafka:Settings:{key}"] = value;
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;

        // baseDirectory: the test's temp root holds no appsettings.json, so only these settings and the code's defaults apply.
        var configuration = WorkerConfiguration.Build(null, settings, baseDirectory: root);
        var (workerSettings, problems) = ConfigurationCheck.Check(configuration);
        Assert.True(problems.Count == 0, "configuration problems: " + string.Join("; ", problems));

        var logs = new TestOutputLoggerProvider(output);
        var app = WorkerHost.Build(configuration, workerSettings, collection =>
        {
            collection.RemoveAll<ILoggerProvider>(); // the console's lines go to the xunit output instead
            collection.AddSingleton<ILoggerProvider>(logs);
            services?.Invoke(collection);
        });
        await app.StartAsync();
        return new WorkerUnderTest(app, root, checkpoints, ownsRoot);
    }

    /// <summary>A seeded random policy checkpoint in the Hugging Face layout, as <c>prefonline init</c> writes.</summary>
    public static async Task CreateInitialPolicyAsync(string directory)
    {
        using var thread = new TensorThread("it-init", 1);
        await thread.RunAsync(() =>
        {
            using var model = PolicyModel.Create(new Gpt2Config { VocabularySize = 258, Layers = 2, Heads = 2, Width = 64, ContextLength = 128 }, seed: 5);
            PolicyCheckpoint.Save(directory, model, ByteTokenizer.Instance);
        }, CancellationToken.None);
    }

    /// <summary>GET /readyz: the status code and each check's (name, healthy, reason).</summary>
    public async Task<(HttpStatusCode Status, IReadOnlyList<(string Name, bool Healthy, string Reason)> Checks)> ReadinessAsync()
    {
        using var response = await http.GetAsync("/readyz");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var checks = body.RootElement.GetProperty("checks").EnumerateArray()
            .Select(c => (c.GetProperty("name").GetString()!, c.GetProperty("healthy").GetBoolean(), c.GetProperty("reason").GetString()!)).ToList();
        return (response.StatusCode, checks);
    }

    public async Task<HttpStatusCode> LivenessAsync()
    {
        using var response = await http.GetAsync("/healthz");
        return response.StatusCode;
    }

    /// <summary>Waits until /readyz answers 200 (policy loaded, brokers reachable).</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var checks = "";
        await Poll.UntilAsync(async () =>
        {
            var (status, found) = await ReadinessAsync();
            if (status == HttpStatusCode.OK) return true;
            AssertRunning();
            checks = string.Join("; ", found.Select(c => $"{c.Name}={c.Healthy} ({c.Reason})"));
            return false;
        }, timeout, "/readyz ready", () => checks);
    }

    /// <summary>The Prometheus scrape: sample name with labels → value.</summary>
    public async Task<IReadOnlyDictionary<string, double>> ScrapeAsync()
    {
        var text = await http.GetStringAsync("/metrics");
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var space = line.LastIndexOf(' ');
            samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return samples;
    }

    /// <summary>One sample of the scrape: the metric with (at least) these labels, or null when absent.</summary>
    public async Task<double?> MetricAsync(string name, params (string Name, string Value)[] labels)
    {
        foreach (var (key, value) in await ScrapeAsync())
        {
            var brace = key.IndexOf('{');
            if ((brace < 0 ? key : key[..brace]) != name) continue;
            if (labels.All(l => key.Contains($"{l.Name}=\"{l.Value}\"", StringComparison.Ordinal))) return value;
        }
        return null;
    }

    /// <summary>Fails the test at once if the worker stopped by itself (a fatal error).</summary>
    public void AssertRunning()
    {
        if (Stopping || Exit.Code != ExitStatus.Success)
            throw new InvalidOperationException($"the worker stopped by itself: exit {Exit.Code} {Exit.Reason}");
    }

    /// <summary>Every checkpoint manifest on disk, by version (verified once through the store's own reader, then cached: versions are immutable).</summary>
    public async Task<IReadOnlyDictionary<long, CheckpointManifest>> ManifestsAsync()
    {
        var reader = new CheckpointReader(CheckpointDirectory);
        foreach (var version in reader.ListVersions())
        {
            if (manifests.ContainsKey(version)) continue;
            manifests[version] = (await reader.LoadAsync(version)).Manifest;
        }
        return manifests;
    }

    /// <summary>The latest checkpoint's version (null before the first).</summary>
    public long? Latest() => new CheckpointReader(CheckpointDirectory).ReadPointers().Latest;

    /// <summary>The manifest of the latest checkpoint. `latest` is read before the versions are listed: read after,
    /// it can name a version the running worker committed in between, which the listing does not hold yet.</summary>
    public async Task<CheckpointManifest> LatestManifestAsync()
    {
        var latest = Latest() ?? throw new InvalidOperationException("no checkpoint yet: the store has no 'latest' pointer");
        return (await ManifestsAsync())[latest];
    }

    /// <summary>
    /// The label audit of the latest checkpoint's lineage: following parents from <c>latest</c>, every
    /// absorbed-labels.jsonl concatenated (oldest first). Exactly-once delivery means each label once.
    /// </summary>
    public async Task<IReadOnlyList<AbsorbedLabel>> AuditChainAsync()
    {
        // The pointer first: a version is committed (renamed in) before `latest` names it, so listing the manifests
        // afterwards always includes it (the other order raced a checkpoint committed in between).
        var latest = Latest();
        var all = await ManifestsAsync();
        var chain = new List<long>();
        for (var version = latest; version is { } v; version = all[v].Parent) chain.Add(v);
        chain.Reverse();
        var labels = new List<AbsorbedLabel>();
        foreach (var version in chain)
        {
            var path = Path.Combine(CheckpointDirectory, CheckpointVersion.DirectoryName(version), LabelAudit.FileName);
            if (File.Exists(path)) labels.AddRange(LabelAudit.Parse(await File.ReadAllTextAsync(path)));
        }
        return labels;
    }

    /// <summary>A clean stop (as SIGTERM): intake stops, a final checkpoint is written, offsets committed.</summary>
    public async Task StopAsync()
    {
        if (stopped) return;
        stopped = true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await App.StopAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            http.Dispose();
            await App.DisposeAsync();
            if (ownsRoot) DeleteRoot(Root);
        }
    }

    public static void DeleteRoot(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
    }
}
