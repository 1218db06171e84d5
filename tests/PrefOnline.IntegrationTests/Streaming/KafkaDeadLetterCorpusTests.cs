using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Tests.Corpus;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// The bad-record corpus (at least 25 kinds) produced to a real Kafka-protocol broker, interleaved with
/// good records, read by the Kafka source through the validating intake: every bad record lands in the
/// dead-letter topic with its reason and original bytes (a record over the size limit as a pointer to its position: its
/// content is never read into memory), every good record passes untouched.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class KafkaDeadLetterCorpusTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Prompts = "prefonline.prompts";
    private const string Feedback = "prefonline.feedback";
    private const string Dlq = "prefonline.dlq";

    [Fact]
    public async Task Every_bad_record_lands_in_the_dead_letter_topic_with_its_reason_and_original_bytes()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Prompts, 1);
        cluster.CreateTopic(Feedback, 1);
        cluster.CreateTopic(Dlq, 1);

        // Interleave: good, bad, good, bad... (the duplicate-id entry comes after its original).
        var sent = new List<(CorpusTopic Topic, byte[] Bytes, string? Reason, string Name)>();
        var goods = BadRecordCorpus.Good;
        for (var i = 0; i < BadRecordCorpus.Bad.Count; i++)
        {
            if (i < goods.Count) sent.Add((goods[i].Topic, goods[i].Bytes, null, goods[i].Name));
            var bad = BadRecordCorpus.Bad[i];
            sent.Add((bad.Topic, bad.Bytes, bad.Reason, bad.Name));
        }
        foreach (var topic in new[] { CorpusTopic.Prompts, CorpusTopic.Feedback })
        {
            await Task.Run(() => ProduceRaw(cluster.BootstrapServers, TopicName(topic), sent.Where(s => s.Topic == topic).Select(s => ((byte[]?)null, s.Bytes))));
        }

        using var metrics = new StreamingMetrics();
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        var router = new DeadLetterRouter(sink, Dlq, metrics);
        var valid = new List<ValidatedRecord>();
        using var cts = new CancellationTokenSource(TestTimeout);
        var intakes = new List<Task>();
        var trackers = new List<OffsetTracker>();
        var sources = new List<IRecordSource>();
        foreach (var topic in new[] { CorpusTopic.Prompts, CorpusTopic.Feedback })
        {
            var tracker = new OffsetTracker();
            var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "worker", TopicName(topic)), tracker, new TestOutputLogger<KafkaRecordSource>(output), metrics);
            var validator = new RecordValidator(new ValidationLimits(), topic == CorpusTopic.Prompts ? SchemaNames.PromptTopic : SchemaNames.FeedbackTopic);
            var intake = new ValidatingIntake(source, validator, router, tracker, metrics);
            trackers.Add(tracker);
            sources.Add(source);
            intakes.Add(Task.Run(async () =>
            {
                await foreach (var item in intake.ReadAllAsync(cts.Token))
                {
                    lock (valid) valid.Add(item);
                    tracker.Complete(item.Source);
                }
            }));
        }

        var badCount = sent.Count(s => s.Reason is not null);
        var letters = await Task.Run(() => ReadAll(cluster.BootstrapServers, Dlq, 1, badCount));
        // Every consumed record is absorbed or dead-lettered: both trackers reach the end of their topics.
        await Eventually.TrueAsync(() => trackers.Zip(new[] { Prompts, Feedback }).All(t => t.First.GetResumeOffset(Id(t.Second, 0)) == sent.Count(s => TopicName(s.Topic) == t.Second)),
            TestTimeout, "every input record absorbed or dead-lettered");
        await cts.CancelAsync();
        foreach (var task in intakes) await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        foreach (var source in sources) await source.DisposeAsync();

        // Dead letters: one per bad record, in input order per topic, original bytes, right headers.
        foreach (var topic in new[] { CorpusTopic.Prompts, CorpusTopic.Feedback })
        {
            var expected = sent.Where(s => s.Topic == topic).Select((s, offset) => (s, offset)).Where(x => x.s.Reason is not null).ToArray();
            var actual = letters.Where(l => Header(l, DeadLetterHeaders.SourceTopic) == TopicName(topic)).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                var (record, offset) = expected[i];
                if (record.Reason == ReasonCodes.RecordTooLarge)
                {
                    // Issue 15: a record over the size limit is never read into memory; its dead letter points at it.
                    Assert.Empty(actual[i].Message.Value ?? []);
                    Assert.Contains("never read into memory", Header(actual[i], DeadLetterHeaders.ForwardError), StringComparison.Ordinal);
                }
                else
                {
                    Assert.True(record.Bytes.AsSpan().SequenceEqual(actual[i].Message.Value ?? []), $"{record.Name}: bytes changed");
                }
                Assert.Equal(record.Reason, Header(actual[i], DeadLetterHeaders.Reason));
                Assert.Equal(offset.ToString(), Header(actual[i], DeadLetterHeaders.SourceOffset));
                Assert.Equal("0", Header(actual[i], DeadLetterHeaders.SourcePartition));
                Assert.False(string.IsNullOrWhiteSpace(Header(actual[i], DeadLetterHeaders.Detail)));
            }
        }

        // Good records: all of them, bytes untouched, nothing else.
        var goodSent = sent.Where(s => s.Reason is null).ToArray();
        var missing = goodSent.Where(g => !valid.Any(v => v.Source.Value.AsSpan().SequenceEqual(g.Bytes))).Select(g => g.Name);
        Assert.True(goodSent.Length == valid.Count, $"valid: {string.Join(", ", valid.Select(v => v.Source))}; missing: {string.Join(", ", missing)}");
        foreach (var good in goodSent)
        {
            Assert.Contains(valid, v => v.Source.Value.AsSpan().SequenceEqual(good.Bytes));
        }

        // Counted per reason, and ok per topic.
        foreach (var group in BadRecordCorpus.Bad.GroupBy(b => (b.Topic, b.Reason)))
        {
            Assert.Equal(group.Count(), metrics.DeadLetterCount(TopicName(group.Key.Topic), group.Key.Reason));
        }
        Assert.Equal(sent.Count(s => s.Reason is not null && s.Topic == CorpusTopic.Prompts), metrics.MessageCount(Prompts, StreamingMetrics.ResultDeadLetter));
        Assert.Equal(goodSent.Count(g => g.Topic == CorpusTopic.Prompts), metrics.MessageCount(Prompts, StreamingMetrics.ResultOk));
        Assert.Equal(goodSent.Count(g => g.Topic == CorpusTopic.Feedback), metrics.MessageCount(Feedback, StreamingMetrics.ResultOk));

        // An external client (kcat) sees the same dead letters and their reason headers.
        var kcat = await ExternalTools.RunAsync(ExternalTools.Kcat, ["-C", "-b", cluster.BootstrapServers, "-t", Dlq, "-o", "beginning", "-e", "-q", "-f", "%h\n"], TestTimeout);
        var reasons = kcat.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(',').Single(h => h.StartsWith("reason=", StringComparison.Ordinal))["reason=".Length..]).ToArray();
        Assert.Equal(letters.Select(l => Header(l, DeadLetterHeaders.Reason)), reasons);
    }

    private static string TopicName(CorpusTopic topic) => topic == CorpusTopic.Prompts ? Prompts : Feedback;
}
