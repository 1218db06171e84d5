using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Benchmarks;

/// <summary>
/// Label freshness of the whole worker: how long from a label being produced to the policy update that
/// learnt from it being applied. The worker (<see cref="WorkerHost"/>, Kafka transport, role all) runs in this
/// process against librdkafka's mock cluster on 127.0.0.1, with simulated users asking prompts and labelling
/// the rollouts as they arrive. For each label:
/// <list type="bullet">
/// <item>produced = its record's CreateTime (stamped by the users' producer when it was produced);</item>
/// <item>absorbed = the label audit (<c>Worker:AuditAbsorbedLabels</c>) of the checkpoint lineage gives its
///   position and the number of updates applied before it was absorbed (u);</item>
/// <item>applied = the <c>created</c> time of the policy event of update u + 1, the first update that trained
///   with it (published after its checkpoint is durable and the offsets committed).</item>
/// </list>
/// The goal (issue 5) is p99 ≤ <c>Learner:UpdateInterval</c> + 2 s.
/// </summary>
public sealed class FreshnessMeasurement : IAsyncDisposable
{
    public static readonly TimeSpan GoalSlack = TimeSpan.FromSeconds(2);

    private const string Prompts = "prefonline.prompts";
    private const string Feedback = "prefonline.feedback";
    private const string Rollouts = "prefonline.rollouts";
    private const string Policy = "prefonline.policy";
    private const string DeadLetter = "prefonline.dlq";

    private readonly MockKafkaCluster cluster;
    private readonly WebApplication worker;
    private readonly KafkaRecordSink usersSink;
    private readonly KafkaRecordSource feedbackTail;
    private readonly KafkaRecordSource policyTail;
    private readonly CancellationTokenSource stop = new();
    private readonly List<Task> loops = [];
    private readonly string root;
    private readonly string checkpoints;
    private readonly List<ConsumedRecord> labels = [];                        // in arrival order
    private readonly ConcurrentDictionary<long, DateTimeOffset> policyEvents = new(); // version → first event's created
    private readonly Dictionary<long, CheckpointManifest> manifests = [];
    private readonly Dictionary<(int Partition, long Offset), long?> absorbed = []; // feedback position → updates before
    private int consumed;

    private FreshnessMeasurement(MockKafkaCluster cluster, WebApplication worker, KafkaRecordSink usersSink, KafkaRecordSource feedbackTail, KafkaRecordSource policyTail,
        string root, string checkpoints, TimeSpan updateInterval)
    {
        this.cluster = cluster;
        this.worker = worker;
        this.usersSink = usersSink;
        this.feedbackTail = feedbackTail;
        this.policyTail = policyTail;
        this.root = root;
        this.checkpoints = checkpoints;
        UpdateInterval = updateInterval;
    }

    public TimeSpan UpdateInterval { get; }

    public TimeSpan Goal => UpdateInterval + GoalSlack;

    /// <summary>Starts the cluster, the worker and the users; returns once the worker is ready and labels flow.</summary>
    public static async Task<FreshnessMeasurement> StartAsync(FreshnessOptions options, int threads, TextWriter log, CancellationToken cancellationToken)
    {
        KafkaNative.EnsureLoaded();
        var root = Path.Combine(Path.GetTempPath(), "prefonline-bench-freshness-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var cluster = MockKafkaCluster.Start();
        foreach (var (topic, partitions) in new[] { (Prompts, 2), (Feedback, 2), (Rollouts, 2), (Policy, 1), (DeadLetter, 1) }) cluster.CreateTopic(topic, partitions);

        var policyDirectory = Path.Combine(root, "initial-policy");
        using (var thread = new TensorThread("bench-init", 1))
        {
            await thread.RunAsync(() =>
            {
                using var model = PolicyModel.Create(options.Model, options.Seed);
                PolicyCheckpoint.Save(policyDirectory, model, ByteTokenizer.Instance);
            }, cancellationToken);
        }

        var checkpoints = Path.Combine(root, "checkpoints");
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Logging:LogLevel:Default"] = "Warning",
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Model:InitialPolicy"] = policyDirectory,
            ["Worker:TensorThreads"] = threads.ToString(CultureInfo.InvariantCulture),
            ["Worker:AuditAbsorbedLabels"] = "true",
            ["Worker:StagingDirectory"] = Path.Combine(root, "staging"),
            ["Checkpoints:Directory"] = checkpoints,
            ["Checkpoints:KeepLast"] = "10000", // the audit lineage is read back
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["Generation:SamplesPerPrompt"] = options.SamplesPerPrompt.ToString(CultureInfo.InvariantCulture),
            ["Generation:MaxNewTokens"] = options.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
            ["Learner:UpdateInterval"] = options.UpdateInterval.ToString("c", CultureInfo.InvariantCulture),
            // Freshness is measured, not learning quality: a guardrail rollback would re-absorb labels.
            ["Guardrails:Action"] = "Alert",
        };
        var configuration = WorkerConfiguration.Build(null, settings, baseDirectory: root);
        var (workerSettings, problems) = ConfigurationCheck.Check(configuration);
        if (problems.Count > 0) throw new InvalidOperationException("freshness benchmark configuration: " + string.Join("; ", problems));
        var worker = WorkerHost.Build(configuration, workerSettings, services =>
        {
            services.RemoveAll<ILoggerProvider>(); // the table is the output; warnings still go to the log writer
            services.AddSingleton<ILoggerProvider>(new TextWriterLoggerProvider(log));
        });
        await worker.StartAsync(cancellationToken);

        var sink = KafkaRecordSink.Create(new KafkaSinkOptions { BootstrapServers = cluster.BootstrapServers });
        var feedbackTail = KafkaRecordSource.Start(TailOptions(cluster.BootstrapServers, Feedback), new OffsetTracker());
        var policyTail = KafkaRecordSource.Start(TailOptions(cluster.BootstrapServers, Policy), new OffsetTracker());
        var measurement = new FreshnessMeasurement(cluster, worker, sink, feedbackTail, policyTail, root, checkpoints, options.UpdateInterval);
        var users = new SimulatedUsers(new SimulatedUsersOptions
        {
            Seed = (int)options.Seed,
            PromptsTopic = Prompts,
            FeedbackTopic = Feedback,
            PromptsPerSecond = options.PromptsPerSecond,
            GroupSize = options.SamplesPerPrompt,
            Preference = "contains:a", // random-init policy: any learnable preference will do
        }, sink, resume => KafkaRecordSource.Start(TailOptions(cluster.BootstrapServers, Rollouts, "bench-users"), resume), NullLogger<SimulatedUsers>.Instance);
        measurement.loops.Add(users.RunAsync(measurement.stop.Token));
        measurement.loops.Add(measurement.ReadFeedbackAsync());
        measurement.loops.Add(measurement.ReadPolicyAsync());
        return measurement;
    }

    /// <summary>
    /// Waits for the next <paramref name="count"/> labels to be produced and applied; returns the seconds from the
    /// first one's production to the last one's application, and each label's latency in seconds.
    /// </summary>
    public async Task<(double Seconds, IReadOnlyList<double> Latencies)> MeasureAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        int first;
        lock (labels) first = consumed;
        List<ConsumedRecord> batch;
        while (true)
        {
            ThrowIfFailed();
            lock (labels)
            {
                if (labels.Count >= first + count)
                {
                    batch = labels.GetRange(first, count);
                    consumed = first + count;
                    break;
                }
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"freshness: fewer than {count} labels produced within {timeout}");
            await Task.Delay(50, cancellationToken);
        }

        while (true)
        {
            ThrowIfFailed();
            await ReadCheckpointsAsync(cancellationToken);
            var applied = batch.Select(Applied).ToList();
            if (applied.All(a => a is not null))
            {
                var latencies = batch.Zip(applied, (label, at) => (at!.Value - label.Timestamp).TotalSeconds).ToList();
                return ((applied.Max()!.Value - batch.Min(l => l.Timestamp)).TotalSeconds, latencies);
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"freshness: {applied.Count(a => a is null)} of {count} labels not applied by an update within {timeout}");
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>When the update that first trained with <paramref name="label"/> was published (null: not yet).</summary>
    private DateTimeOffset? Applied(ConsumedRecord label)
    {
        if (!absorbed.TryGetValue((label.Partition.Partition, label.Offset), out var updatesBefore)) return null;
        var before = updatesBefore ?? throw new InvalidDataException("the label audit lacks updates_before");
        // Update checkpoints carry their own version as policy_version; the first with more updates applied it.
        foreach (var manifest in manifests.Values.OrderBy(m => m.Version))
        {
            if (!manifest.Metrics.TryGetValue("policy_version", out var version) || (long)version != manifest.Version) continue;
            if (!manifest.Metrics.TryGetValue("updates", out var updates) || updates <= before) continue;
            return policyEvents.TryGetValue(manifest.Version, out var created) ? created : null;
        }
        return null;
    }

    private async Task ReadCheckpointsAsync(CancellationToken cancellationToken)
    {
        var reader = new CheckpointReader(checkpoints);
        foreach (var version in reader.ListVersions())
        {
            if (manifests.ContainsKey(version)) continue;
            var checkpoint = await reader.LoadAsync(version, cancellationToken);
            manifests[version] = checkpoint.Manifest;
            if (!checkpoint.Contains(LabelAudit.FileName)) continue;
            foreach (var label in LabelAudit.Parse(await File.ReadAllTextAsync(checkpoint.GetPath(LabelAudit.FileName), cancellationToken)))
            {
                // Exactly-once delivery: a position audited twice would make every latency here meaningless.
                if (!absorbed.TryAdd((label.Partition, label.Offset), label.UpdatesBefore))
                    throw new InvalidDataException($"label {label.Id} at {label.Topic}[{label.Partition}]@{label.Offset} was absorbed twice (checkpoint v{version})");
            }
        }
    }

    private async Task ReadFeedbackAsync()
    {
        await foreach (var record in feedbackTail.Records.ReadAllAsync(stop.Token))
        {
            lock (labels) labels.Add(record);
        }
    }

    private async Task ReadPolicyAsync()
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.PolicyTopic);
        await foreach (var record in policyTail.Records.ReadAllAsync(stop.Token))
        {
            if (validator.Validate(record).Record is PolicyEvent policyEvent) policyEvents.TryAdd(policyEvent.Version, policyEvent.Created);
        }
    }

    private void ThrowIfFailed()
    {
        foreach (var loop in loops.Where(l => l.IsFaulted)) throw new InvalidOperationException("freshness: a load or reader loop failed: " + loop.Exception!.InnerException!.Message, loop.Exception);
        var exit = worker.Services.GetRequiredService<ExitStatus>();
        if (exit.Code != ExitStatus.Success) throw new InvalidOperationException($"freshness: the worker stopped: {exit.Reason}");
    }

    private static KafkaSourceOptions TailOptions(string bootstrap, string topic, string? group = null) => new()
    {
        BootstrapServers = bootstrap,
        GroupId = group ?? "bench-tail-" + Guid.NewGuid().ToString("N"),
        Topics = [topic],
    };

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        foreach (var loop in loops)
        {
            try
            {
                await loop;
            }
            catch (Exception e) when (e is OperationCanceledException or StreamingException)
            {
            }
        }
        await feedbackTail.DisposeAsync();
        await policyTail.DisposeAsync();
        await usersSink.DisposeAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await worker.StopAsync(timeout.Token);
        await worker.DisposeAsync();
        cluster.Dispose();
        stop.Dispose();
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
