using System.Security.Cryptography;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The whole worker (WorkerHost, Kafka transport, role all) against librdkafka's mock cluster, driven from
/// outside by real Confluent.Kafka clients: prompts and labels in, rollouts and policy events out.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerEndToEndTests(ITestOutputHelper output)
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);

    public static readonly string[] Questions =
    [
        "What is a cat?", "Name a colour.", "Say hello.", "Count to three.", "What is rain?",
        "Pick a fruit.", "Why is the sky blue?", "Tell me a word.", "What is two plus two?", "Describe the sea.",
    ];

    [Fact]
    public async Task Prompts_and_labels_in_give_rollouts_and_rising_policy_versions_out_and_offsets_are_committed_only_after_a_checkpoint_absorbed_them()
    {
        const int promptCount = 40;
        await using var cluster = WorkerCluster.Start();
        await using var worker = await WorkerUnderTest.StartAsync(cluster, output);
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
        await worker.WaitReadyAsync(Deadline);
        var initial = PolicyEvents(await policy.WaitForAsync(r => r.Count >= 1, Deadline, "the loaded policy's event"))[0];

        var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
        await using var stop = new BackgroundLoops();
        var labelling = stop.Start(labeler.RunAsync);
        var samples = new List<CommitSample>();
        var sampling = stop.Start(t => SampleCommitsAsync(cluster, samples, t));

        for (var i = 0; i < promptCount; i++)
            cluster.Produce(Prompts, i % InputPartitions, new PromptRecord($"e2e-prompt-{i:D3}", Questions[i % Questions.Length]));
        await cluster.FlushAsync(Deadline);

        // Every prompt answered (K rollouts each), every label absorbed, the policy updated at least twice,
        // and the latest checkpoint has absorbed every prompt.
        var promptEnds = cluster.EndOffsets(Prompts, InputPartitions);
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            worker.AssertRunning();
            var events = PolicyEvents(policy.Records);
            var audited = (await worker.AuditChainAsync()).Select(a => a.Id).ToHashSet(StringComparer.Ordinal);
            var latest = worker.Latest() is { } v ? (await worker.ManifestsAsync())[v] : null;
            var answered = labeler.Rollouts.Select(r => r.PromptId).Distinct().Count();
            var done = answered == promptCount
                       && labeler.Produced.Count > 0 && labeler.Produced.All(audited.Contains)
                       && events.Select(e => e.Version).Where(v => v > initial.Version).Distinct().Count() >= 2
                       && latest is not null && promptEnds.All(p => Offset(latest, Prompts, p.Key) == p.Value);
            if (done) break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"after {Deadline}: {answered}/{promptCount} prompts answered, {labeler.Produced.Count(audited.Contains)}/{labeler.Produced.Count} labels audited, {events.Count} policy events, latest {latest?.Version}");
            await Task.Delay(200);
        }

        await stop.CancelAsync();
        await labelling;
        await sampling;
        await worker.StopAsync(); // clean stop: final checkpoint, offsets committed
        Assert.Equal(ExitStatus.Success, worker.Exit.Code);
        Assert.True(worker.Pipeline.Completed, "the pipeline did not finish its final checkpoint");

        var manifests = await worker.ManifestsAsync();
        var final = manifests[worker.Latest()!.Value];

        // Rollouts: K per prompt, each prompt generated once, later ones from an updated policy (the sample
        // budget, 64 ahead, holds back part of the 80 samples until an update has trained on fresh ones).
        Assert.All(labeler.Rollouts.GroupBy(r => r.PromptId), g => Assert.Equal(2, g.Count()));
        Assert.Equal(promptCount * 2, labeler.Rollouts.Count);
        Assert.All(labeler.Rollouts, r => Assert.True(r.PolicyVersion >= initial.Version, $"rollout {r.Id} from v{r.PolicyVersion} before the loaded v{initial.Version}"));
        Assert.Contains(labeler.Rollouts, r => r.PolicyVersion > initial.Version);

        // Policy events: versions never go back and rose at least twice; each names a checkpoint's policy
        // file by path and hash (a checkpoint without an update re-announces the unchanged version from its
        // own, newer directory, so the newest event always names a file retention has kept).
        // The last update may have published just before the stop: give the test's own consumer time to read it.
        var finalVersion = final.Metrics["policy_version"];
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(30); !PolicyEvents(policy.Records).Any(e => e.Version == finalVersion) && DateTime.UtcNow < until;)
            await Task.Delay(100);
        var published = PolicyEvents(policy.Records);
        Assert.All(published, e => Assert.Equal(PolicyEventKind.Publish, e.Kind));
        Assert.Equal(published.Select(e => e.Version).Order(), published.Select(e => e.Version));
        Assert.True(published.Select(e => e.Version).Distinct().Count() >= 3, $"policy versions published: {string.Join(", ", published.Select(e => e.Version).Distinct())}");
        foreach (var e in published)
        {
            var path = new Uri(e.Uri).LocalPath;
            Assert.True(CheckpointVersion.TryParseDirectoryName(Path.GetFileName(Path.GetDirectoryName(path))!, out var holder), $"{e.Uri} is not inside a checkpoint version directory");
            Assert.True(holder >= e.Version, $"event v{e.Version} names the policy of the older checkpoint v{holder}");
            Assert.Equal(manifests[holder].Files["policy.safetensors"].Sha256, e.Sha256);
            Assert.Equal(e.Sha256, Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path))));
        }
        Assert.Contains(published, e => e.Version == final.Metrics["policy_version"]);

        // Every label absorbed exactly once along the final lineage, at distinct positions.
        var audit = await worker.AuditChainAsync();
        Assert.Equal(labeler.Produced.Order(StringComparer.Ordinal), audit.Select(a => a.Id).Order(StringComparer.Ordinal));
        Assert.Equal(audit.Count, audit.Select(a => (a.Topic, a.Partition, a.Offset)).Distinct().Count());

        // Committed offsets: every value ever seen was the offsets of a checkpoint already written at the
        // time (commits follow durable checkpoints, never lead them); after the clean stop, both groups
        // have committed the final checkpoint's offsets, which are the ends of both input topics.
        Assert.NotEmpty(samples);
        Assert.Contains(samples, s => s.Offsets.Values.Any(o => o > 0));
        foreach (var sample in samples)
        {
            foreach (var (partition, committed) in sample.Offsets)
            {
                if (committed is not { } offset) continue;
                var backing = manifests.Values.Where(m => Offset(m, sample.Topic, partition) == offset && m.Created <= sample.At).ToList();
                Assert.True(backing.Count > 0,
                    $"{sample.Group} committed {sample.Topic}[{partition}]@{offset} at {sample.At:O}, but no checkpoint written before then holds that offset");
            }
        }
        var feedbackEnds = cluster.EndOffsets(Feedback, InputPartitions);
        Assert.Equal(feedbackEnds.Values.Sum(), labeler.Produced.Count);
        foreach (var (topic, group, ends) in new[] { (Prompts, WorkerUnderTest.PromptGroup, promptEnds), (Feedback, WorkerUnderTest.FeedbackGroup, feedbackEnds) })
        {
            var committed = cluster.Committed(group, topic, InputPartitions);
            foreach (var (partition, end) in ends)
            {
                Assert.Equal(end, Offset(final, topic, partition));
                Assert.Equal(end, committed[partition]);
            }
        }
    }

    internal static List<PolicyEvent> PolicyEvents(IEnumerable<Confluent.Kafka.ConsumeResult<byte[], byte[]>> records)
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.PolicyTopic);
        return records.Select(r =>
        {
            var result = validator.Validate(r.Message.Value);
            Assert.True(result.IsValid, $"policy event {r.TopicPartitionOffset} breaks the contract: {result}");
            return (PolicyEvent)result.Record!;
        }).ToList();
    }

    internal static long? Offset(CheckpointManifest manifest, string topic, int partition) =>
        manifest.Offsets.TryGetValue(topic, out var partitions) && partitions.TryGetValue(partition, out var offset) ? offset : null;

    internal sealed record CommitSample(DateTimeOffset At, string Group, string Topic, IReadOnlyDictionary<int, long?> Offsets);

    /// <summary>Reads both groups' committed offsets every 250 ms (each sample stamped after its answer arrived).</summary>
    internal static async Task SampleCommitsAsync(WorkerCluster cluster, List<CommitSample> samples, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var (group, topic) in new[] { (WorkerUnderTest.PromptGroup, Prompts), (WorkerUnderTest.FeedbackGroup, Feedback) })
            {
                var offsets = await Task.Run(() => cluster.Committed(group, topic, InputPartitions));
                samples.Add(new CommitSample(DateTimeOffset.UtcNow, group, topic, offsets));
            }
            try
            {
                await Task.Delay(250, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
