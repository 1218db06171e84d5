using PrefOnline.IntegrationTests.Process;
using System.Net;
using System.Security.Cryptography;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.PolicyDistribution;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Issue 11, item 2: poison records on the policy topic, which every generator reads from its start. A generator
/// skips them with a counted reason (<c>prefonline_skipped_records_total</c>) and keeps serving the version it
/// has; they are not dead-lettered, so a restart that reads them again adds nothing to the dead-letter topic.
/// Before the fix the first of them (a lone surrogate escape in a key) faulted the policy intake and stopped the
/// generator, and a restart read it again: a crash loop.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerPolicyPoisonTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task A_generator_skips_and_counts_poison_policy_records_keeps_its_version_and_survives_a_restart_on_them()
    {
        await using var cluster = WorkerCluster.Start();
        var root = Path.Combine(Path.GetTempPath(), "prefonline-poison-it-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            // A version on the mounted volume (file URIs must point into the generator's checkpoint directory), without a
            // latest pointer: the generator starts on Model:InitialPolicy and follows the events.
            var volume = Path.Combine(root, "volume");
            var published = await WritePolicyAsync(Path.Combine(volume, "v000005"));
            var generatorSettings = new Dictionary<string, string?> { ["Worker:Role"] = "generator", ["Checkpoints:Directory"] = volume };

            // The topic as a new generator finds it: a good event (v5), then poison, then more poison of other kinds.
            cluster.Produce(Policy, 0, published(5));
            cluster.ProduceRaw(Policy, 0, """{"\udc00":0}"""u8.ToArray());
            cluster.ProduceRaw(Policy, 0, """{"schema":"prefonline.policy.v1","\ud800":1}"""u8.ToArray());
            cluster.ProduceRaw(Policy, 0, [0x00, 0x9C, 0xFF, 0x01]);
            await cluster.FlushAsync(Deadline);

            await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
            var generator = await WorkerUnderTest.StartAsync(cluster, output, generatorSettings, root);
            try
            {
                await AssertServesAsync(generator, cluster, rollouts, 5, "poison-1");
                await AssertSkippedAsync(generator, lone: 2, binary: 1);

                // Poison arriving while it runs is skipped the same way, and a good event after it is still followed.
                cluster.ProduceRaw(Policy, 0, """{"\udc00\u0041":"x","schema":"prefonline.policy.v1"}"""u8.ToArray());
                cluster.ProduceRaw(Policy, 0, "{not json"u8.ToArray());
                await cluster.FlushAsync(Deadline);
                await WaitForAsync(generator, async () => (await generator.ScrapeAsync()).GetValueOrDefault(Skipped(ReasonCodes.InvalidJson)) == 1, "the live poison skipped");
                await AssertServesAsync(generator, cluster, rollouts, 5, "poison-2");
                await AssertSkippedAsync(generator, lone: 3, binary: 1);
                cluster.Produce(Policy, 0, published(6));
                await cluster.FlushAsync(Deadline);
                await AssertServesAsync(generator, cluster, rollouts, 6, "poison-3");
            }
            finally
            {
                await generator.DisposeAsync();
            }

            // A restart reads the whole topic again: the same poison is skipped again, nothing reaches the dead-letter topic.
            var restarted = await WorkerUnderTest.StartAsync(cluster, output, generatorSettings, root);
            try
            {
                await AssertServesAsync(restarted, cluster, rollouts, 6, "poison-4");
                await AssertSkippedAsync(restarted, lone: 3, binary: 1);
                Assert.Equal(1, (await restarted.ScrapeAsync())[Skipped(ReasonCodes.InvalidJson)]);
            }
            finally
            {
                await restarted.DisposeAsync();
            }
            Assert.Equal(0, cluster.EndOffsets(DeadLetter, 1)[0]);
        }
        finally
        {
            WorkerUnderTest.DeleteRoot(root);
        }
    }

    /// <summary>The generator is ready, says it serves <paramref name="version"/>, and answers a new prompt with it.</summary>
    private async Task AssertServesAsync(WorkerUnderTest generator, WorkerCluster cluster, TopicTail rollouts, long version, string promptId)
    {
        await WaitForAsync(generator, async () =>
        {
            var (status, checks) = await generator.ReadinessAsync();
            return status == HttpStatusCode.OK && checks.Any(c => c.Name == "model" && c.Reason.Contains($"policy v{version}", StringComparison.Ordinal));
        }, $"ready with policy v{version}");
        cluster.Produce(Prompts, 0, new PromptRecord(promptId, "Still there?"));
        await cluster.FlushAsync(Deadline);
        var answers = await rollouts.WaitForAsync(r => RolloutsOf(r).Count(x => x.PromptId == promptId) >= 2, Deadline, $"two rollouts for {promptId}");
        Assert.All(RolloutsOf(answers).Where(x => x.PromptId == promptId), x => Assert.Equal(version, x.PolicyVersion));
        generator.AssertRunning();
    }

    private static async Task AssertSkippedAsync(WorkerUnderTest generator, int lone, int binary)
    {
        var scrape = await generator.ScrapeAsync();
        Assert.Equal(lone, scrape.GetValueOrDefault(Skipped(ReasonCodes.LoneSurrogate)));
        Assert.Equal(binary, scrape.GetValueOrDefault(Skipped(ReasonCodes.BinaryData)));
        var skipped = scrape.Where(s => s.Key.StartsWith("prefonline_skipped_records_total{", StringComparison.Ordinal)).Sum(s => s.Value);
        Assert.Equal(skipped, scrape[$"prefonline_messages_total{{result=\"skipped\",topic=\"{Policy}\"}}"]);
        Assert.DoesNotContain(scrape, s => s.Key.StartsWith("prefonline_dead_letters_total{", StringComparison.Ordinal) && s.Key.Contains(Policy, StringComparison.Ordinal) && s.Value > 0);
    }

    private static string Skipped(string reason) => $"prefonline_skipped_records_total{{reason=\"{reason}\",topic=\"{Policy}\"}}";

    private static Task WaitForAsync(WorkerUnderTest worker, Func<Task<bool>> condition, string what) =>
        Poll.UntilAsync(async () =>
        {
            if (await condition()) return true;
            worker.AssertRunning();
            return false;
        }, Deadline, what);

    private static List<RolloutRecord> RolloutsOf(IEnumerable<Confluent.Kafka.ConsumeResult<byte[], byte[]>> records)
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.RolloutTopic);
        return records.Select(r => (RolloutRecord)validator.Validate(r.Message.Value).Record!).ToList();
    }

    /// <summary>
    /// A published policy as the learner writes one: a bare weights file beside the tokenizer files. Returns the event
    /// naming it as a given version, with the SHA-256 of every policy file, as the learner's events carry them.
    /// </summary>
    private static async Task<Func<long, PolicyEvent>> WritePolicyAsync(string directory)
    {
        var path = Path.Combine(directory, StateFiles.Policy);
        using var thread = new TensorThread("it-poison-policy", 1);
        await thread.RunAsync(() =>
        {
            using var model = PolicyModel.Create(new Gpt2Config { VocabularySize = 258, Layers = 2, Heads = 2, Width = 64, ContextLength = 128 }, seed: 23);
            PolicyCheckpoint.Save(directory, model, ByteTokenizer.Instance);
            PolicyCheckpoint.SaveWeightsFile(path, model);
        }, CancellationToken.None);
        var files = PolicyFiles.Names.Where(n => File.Exists(Path.Combine(directory, n)))
            .ToDictionary(n => n, n => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(directory, n)))));
        return version => PolicyEvent.Publish(version, new Uri(path).AbsoluteUri, files[StateFiles.Policy], DateTimeOffset.UtcNow, new Dictionary<string, double>(), files);
    }
}
