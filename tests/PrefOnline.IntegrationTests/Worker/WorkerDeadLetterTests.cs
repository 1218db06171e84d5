using PrefOnline.IntegrationTests.Process;
using PrefOnline.Worker.Pipeline;
using System.Globalization;
using System.Net;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Tests.Corpus;
using PrefOnline.Streaming.Validation;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The bad-record corpus (BadRecordCorpus: every reason code, at least 25 kinds) produced into the running
/// worker's prompts and feedback topics among good records: each bad record reaches prefonline.dlq with
/// its reason, its source position and its original bytes, is counted in /metrics, and nothing else is
/// affected — every good prompt is answered, every good label absorbed, and the worker keeps working.
/// Besides the corpus, bad only for this worker: ratings outside its rating scale (Reward:RatingMin/RatingMax,
/// default -10..10), dead-lettered as out-of-range at intake and never seen by the human-rating drift detector.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerDeadLetterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task Every_bad_record_is_dead_lettered_with_reason_position_and_original_bytes_while_every_good_record_is_processed()
    {
        Assert.True(BadRecordCorpus.Bad.Select(b => b.Name).Distinct().Count() >= 25, "the corpus must hold at least 25 kinds of bad records");
        await using var cluster = WorkerCluster.Start();
        await using var worker = await WorkerUnderTest.StartAsync(cluster, output);
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await using var deadLetters = new TopicTail(cluster.BootstrapServers, DeadLetter, 1);
        await worker.WaitReadyAsync(Deadline);

        // Into partition 0 of each input: good, bad, good, bad, ... (the corpus's goods first, then our own
        // prompts and labels), so a bad record is surrounded by records that must pass. The duplicate-id
        // entry repeats the id of a good label produced before it.
        var sent = new List<(string Topic, long Offset, byte[] Bytes, string? Reason, string Name)>();
        var next = new Dictionary<string, long> { [Prompts] = 0, [Feedback] = 0 };
        void Send(string topic, byte[] bytes, string? reason, string name)
        {
            sent.Add((topic, next[topic]++, bytes, reason, name));
            cluster.ProduceRaw(topic, 0, bytes);
        }
        var goods = BadRecordCorpus.Good.Select(g => (Topic: TopicOf(g.Topic), g.Bytes, g.Name)).ToList();
        for (var i = 0; i < 24; i++)
        {
            goods.Add((Prompts, RecordSerializer.Serialize(new PromptRecord($"dlq-good-prompt-{i:D2}", WorkerEndToEndTests.Questions[i % WorkerEndToEndTests.Questions.Length])), $"prompt {i}"));
            goods.Add((Feedback, RecordSerializer.Serialize(new PreferenceRecord($"dlq-good-label-{i:D2}", "Say hello.", "Hi.", $"Go away {i}.")), $"label {i}"));
        }
        // Valid but far longer than the policy's context (128 tokens): a long question, a long rated answer.
        goods.Add((Prompts, RecordSerializer.Serialize(new PromptRecord("dlq-long-prompt", string.Concat(Enumerable.Repeat("Why is the sky blue? ", 1500)))), "prompt of 31,500 characters"));
        goods.Add((Feedback, RecordSerializer.Serialize(new PreferenceRecord("dlq-long-label", string.Concat(Enumerable.Repeat("Explain. ", 3000)), new string('a', 30_000), "No.")), "preference with 27,000 and 30,000 characters"));
        goods.Add((Feedback, RecordSerializer.Serialize(new RatingRecord("dlq-long-rating", "Say hello.", new string('b', 32 * 1024), 0.5)), "rating of a 32 KiB completion"));
        var goodQueue = new Queue<(string Topic, byte[] Bytes, string Name)>(goods);
        var bads = BadRecordCorpus.Bad.Select(b => (Topic: TopicOf(b.Topic), b.Bytes, b.Reason, b.Name)).ToList();
        bads.Add((Feedback, RecordSerializer.Serialize(new RatingRecord("dlq-rating-above-scale", "Say hello.", "Hi.", 10.5)), ReasonCodes.OutOfRange, "rating above Reward:RatingMax"));
        bads.Add((Feedback, RecordSerializer.Serialize(new RatingRecord("dlq-rating-below-scale", "Say hello.", "Go away.", -11)), ReasonCodes.OutOfRange, "rating below Reward:RatingMin"));
        foreach (var entry in bads)
        {
            if (goodQueue.TryDequeue(out var good)) Send(good.Topic, good.Bytes, null, good.Name);
            Send(entry.Topic, entry.Bytes, entry.Reason, entry.Name);
        }
        while (goodQueue.TryDequeue(out var good)) Send(good.Topic, good.Bytes, null, good.Name);
        await cluster.FlushAsync(Deadline);

        // Every bad record in the dead-letter topic: original bytes, reason, source topic/partition/offset.
        var bad = sent.Where(s => s.Reason is not null).ToList();
        var letters = await deadLetters.WaitForAsync(r => r.Count >= bad.Count, Deadline, $"{bad.Count} dead letters");
        Assert.Equal(bad.Count, letters.Count);
        foreach (var expected in bad)
        {
            var letter = letters.SingleOrDefault(l => Header(l, DeadLetterHeaders.SourceTopic) == expected.Topic
                                                      && Header(l, DeadLetterHeaders.SourceOffset) == expected.Offset.ToString(CultureInfo.InvariantCulture));
            Assert.True(letter is not null, $"{expected.Name} ({expected.Topic}@{expected.Offset}) has no dead letter");
            Assert.Equal(expected.Reason, Header(letter, DeadLetterHeaders.Reason));
            Assert.Equal("0", Header(letter, DeadLetterHeaders.SourcePartition));
            if (expected.Reason == ReasonCodes.RecordTooLarge)
            {
                // Never read into memory (issue 15): the dead letter is a pointer to the original's position.
                Assert.Empty(letter.Message.Value ?? []);
                Assert.Contains("never read into memory", Header(letter, DeadLetterHeaders.ForwardError), StringComparison.Ordinal);
            }
            else
            {
                Assert.True(expected.Bytes.AsSpan().SequenceEqual(letter.Message.Value ?? []), $"{expected.Name}: the dead letter's bytes differ from the original");
            }
        }

        // Every good prompt answered with K rollouts; every good label absorbed (the audit lists them, once).
        var goodPrompts = sent.Where(s => s.Reason is null && s.Topic == Prompts).Select(s => PromptId(s.Bytes)).ToList();
        await rollouts.WaitForAsync(r => goodPrompts.All(id => RolloutPromptIds(r).Count(p => p == id) == 2), Deadline, "two rollouts for every good prompt");
        var goodLabels = sent.Where(s => s.Reason is null && s.Topic == Feedback).Select(s => (Offset: s.Offset, s.Name)).ToList();
        var audit = new List<AbsorbedLabel>();
        await Poll.UntilAsync(async () =>
        {
            worker.AssertRunning();
            audit = (await worker.AuditChainAsync()).ToList();
            return audit.Count >= goodLabels.Count;
        }, Deadline, "every good label absorbed", () => $"{audit.Count} of {goodLabels.Count} good labels absorbed");
        Assert.Equal(goodLabels.Select(g => g.Offset), audit.Select(a => a.Offset).Order());
        Assert.All(audit, a => Assert.Equal((Feedback, 0), (a.Topic, a.Partition)));

        // Counted: prefonline_dead_letters_total{topic,reason} and messages_total{result} match what was sent.
        var scrape = await worker.ScrapeAsync();
        foreach (var group in bad.GroupBy(b => (b.Topic, b.Reason)))
        {
            var sample = $"prefonline_dead_letters_total{{reason=\"{group.Key.Reason}\",topic=\"{group.Key.Topic}\"}}";
            Assert.True(scrape.TryGetValue(sample, out var value), $"/metrics lacks {sample}");
            Assert.Equal(group.Count(), value);
        }
        Assert.Equal(bad.Count, scrape.Where(s => s.Key.StartsWith("prefonline_dead_letters_total{", StringComparison.Ordinal)).Sum(s => s.Value));
        foreach (var topic in new[] { Prompts, Feedback })
        {
            Assert.Equal(bad.Count(b => b.Topic == topic), scrape[$"prefonline_messages_total{{result=\"dead_letter\",topic=\"{topic}\"}}"]);
            Assert.Equal(sent.Count(s => s.Reason is null && s.Topic == topic), scrape[$"prefonline_messages_total{{result=\"ok\",topic=\"{topic}\"}}"]);
        }
        // The human-rating stream (what the drift detector watches) holds the good ratings only.
        var goodRatings = sent.Where(s => s.Reason is null && s.Topic == Feedback).Select(s => RatingOf(s.Bytes)).OfType<double>().ToList();
        Assert.True(goodRatings.Count >= 3, $"only {goodRatings.Count} good ratings were sent");
        Assert.Equal(goodRatings.Average(), scrape["prefonline_reward{source=\"human\"}"], 9);

        // Never stopped: still live, ready, and still answering a prompt produced after all of this.
        Assert.Equal(HttpStatusCode.OK, await worker.LivenessAsync());
        Assert.Equal(HttpStatusCode.OK, (await worker.ReadinessAsync()).Status);
        cluster.Produce(Prompts, 1, new PromptRecord("dlq-after", "Still there?"));
        await cluster.FlushAsync(Deadline);
        await rollouts.WaitForAsync(r => RolloutPromptIds(r).Count(p => p == "dlq-after") == 2, Deadline, "rollouts for a prompt sent after the corpus");
        // Training goes on with all of it in the buffers (long human pairs, reward model, replay): an update after the last prompt.
        var updatesAtAbsorption = (await worker.LatestManifestAsync()).Metrics["updates"];
        await Poll.UntilAsync(async () =>
        {
            worker.AssertRunning();
            return (await worker.LatestManifestAsync()).Metrics["updates"] >= updatesAtAbsorption + 1;
        }, Deadline, "an update after the corpus was absorbed");

        worker.AssertRunning();
    }

    private static string TopicOf(CorpusTopic topic) => topic == CorpusTopic.Prompts ? Prompts : Feedback;

    private static double? RatingOf(byte[] bytes) =>
        new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.FeedbackTopic).Validate(bytes).Record is RatingRecord rating ? rating.Reward : null;

    private static string PromptId(byte[] bytes)
    {
        var result = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.PromptTopic).Validate(bytes);
        return ((PromptRecord)result.Record!).Id;
    }

    private static IEnumerable<string> RolloutPromptIds(IEnumerable<Confluent.Kafka.ConsumeResult<byte[], byte[]>> records)
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.RolloutTopic);
        return records.Select(r => ((RolloutRecord)validator.Validate(r.Message.Value).Record!).PromptId);
    }
}
