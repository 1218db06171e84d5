using System.Text;
using Confluent.Kafka;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// Issue 11, item 6: a bad record whose headers alone are larger than what the dead-letter producer may send
/// (librdkafka's <c>message.max.bytes</c> counts key, value and headers). Its dead letter copies those headers
/// and is refused (MsgSizeTooLarge); the pointer dead letter that replaces it carries none of them, so it is
/// written, the intake moves on, and the records around it are absorbed. Before the fix the pointer kept the
/// headers, was refused as well, and the exception stopped the intake: a poison pill through its headers.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class KafkaDeadLetterPointerTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Feedback = "prefonline.feedback";
    private const string Dlq = "prefonline.dlq";
    private const int DeadLetterLimit = 100_000;

    [Fact]
    public async Task A_record_whose_headers_exceed_the_dead_letter_limit_becomes_a_pointer_and_the_intake_goes_on()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Feedback, 1);
        cluster.CreateTopic(Dlq, 1);
        var bad = Encoding.UTF8.GetBytes("""{"id":"no-schema","prompt":"a"}""");
        await Task.Run(() =>
        {
            KafkaNative.EnsureLoaded();
            using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true }).Build();
            producer.Produce(Feedback, new Message<byte[], byte[]> { Key = "l-1"u8.ToArray(), Value = Label("l-1") });
            var headers = new Headers { { "trace", new byte[80_000] }, { "baggage", new byte[80_000] } };
            producer.Produce(Feedback, new Message<byte[], byte[]> { Key = "bad"u8.ToArray(), Value = bad, Headers = headers });
            producer.Produce(Feedback, new Message<byte[], byte[]> { Key = "l-2"u8.ToArray(), Value = Label("l-2") });
            if (producer.Flush(TestTimeout) > 0) throw new TimeoutException("the input was not produced");
        });

        using var metrics = new StreamingMetrics();
        var sinkOptions = Sink(cluster.BootstrapServers);
        sinkOptions.Settings["message.max.bytes"] = DeadLetterLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var sink = KafkaRecordSink.Create(sinkOptions, new TestOutputLogger<KafkaRecordSink>(output));
        var tracker = new OffsetTracker();
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "worker", Feedback), tracker, new TestOutputLogger<KafkaRecordSource>(output), metrics);
        var intake = new ValidatingIntake(source, new RecordValidator(new ValidationLimits(), SchemaNames.FeedbackTopic), new DeadLetterRouter(sink, Dlq, metrics), tracker, metrics);

        using var cts = new CancellationTokenSource(TestTimeout);
        var absorbed = new List<string>();
        var reading = Task.Run(async () =>
        {
            await foreach (var item in intake.ReadAllAsync(cts.Token))
            {
                lock (absorbed) absorbed.Add(((PreferenceRecord)item.Record).Id);
                tracker.Complete(item.Source);
            }
        });
        await Eventually.TrueAsync(() => tracker.GetResumeOffset(Id(Feedback, 0)) == 3 || reading.IsCompleted, TestTimeout, "all three records absorbed or dead-lettered");
        Assert.False(reading.IsFaulted, $"the intake failed: {reading.Exception}");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);

        Assert.Equal(["l-1", "l-2"], absorbed);
        var letter = Assert.Single(await Task.Run(() => ReadAll(cluster.BootstrapServers, Dlq, 1, 1)));
        Assert.Empty(letter.Message.Value ?? []);
        Assert.Equal("bad"u8.ToArray(), letter.Message.Key);
        Assert.DoesNotContain(letter.Message.Headers, h => h.Key is "trace" or "baggage");
        Assert.Equal(ReasonCodes.MissingSchema, Header(letter, DeadLetterHeaders.Reason));
        Assert.Equal(Feedback, Header(letter, DeadLetterHeaders.SourceTopic));
        Assert.Equal("0", Header(letter, DeadLetterHeaders.SourcePartition));
        Assert.Equal("1", Header(letter, DeadLetterHeaders.SourceOffset));
        Assert.False(string.IsNullOrWhiteSpace(Header(letter, DeadLetterHeaders.Detail)));
        var forwardError = Header(letter, DeadLetterHeaders.ForwardError);
        output.WriteLine($"forward-error: {forwardError}");
        Assert.Contains($"the original headers (2, {2 * 80_000 + "trace".Length + "baggage".Length} bytes)", forwardError);
        Assert.Contains("MsgSizeTooLarge", forwardError);
        Assert.Equal(1, metrics.DeadLetterCount(Feedback, ReasonCodes.MissingSchema));
    }

    private static byte[] Label(string id) => RecordSerializer.Serialize(new PreferenceRecord(id, "Say hello.", "Hi.", "Go away."));
}
