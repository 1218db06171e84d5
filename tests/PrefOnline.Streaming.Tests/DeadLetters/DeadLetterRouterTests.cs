using System.Text;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.DeadLetters;

public sealed class DeadLetterRouterTests
{
    private static ConsumedRecord Source(byte[] value) => new(new TopicPartitionId("prefonline.feedback", 2), 41, "key"u8.ToArray(), value,
        DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), [RecordHeader.Utf8("trace", "t-1"), RecordHeader.Utf8("reason", "theirs")]);

    [Fact]
    public async Task A_dead_letter_keeps_the_original_bytes_and_key_and_carries_the_headers()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("prefonline.dlq", 1);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(broker.CreateSink(), "prefonline.dlq", metrics);
        var original = new byte[] { 0x00, 0xFF, 0x7B, 0x22 };

        await router.RouteAsync(Source(original), new ValidationFailure(ReasonCodes.BinaryData, "control byte 0x00 at byte 0\nsecond line"), CancellationToken.None);

        await using var dlq = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "inspect", Topics = { "prefonline.dlq" } }, new OffsetTracker());
        var letter = (await Eventually.ReadAsync(dlq.Records, 1, TimeSpan.FromSeconds(5))).Single();
        Assert.Equal(original, letter.Value);
        Assert.Equal("key"u8.ToArray(), letter.Key);
        string Last(string name) => letter.Headers.Last(h => h.Name == name).ValueAsString();
        Assert.Equal("binary-data", Last(DeadLetterHeaders.Reason));
        Assert.Equal("control byte 0x00 at byte 0 second line", Last(DeadLetterHeaders.Detail));
        Assert.Equal("prefonline.feedback", Last(DeadLetterHeaders.SourceTopic));
        Assert.Equal("2", Last(DeadLetterHeaders.SourcePartition));
        Assert.Equal("41", Last(DeadLetterHeaders.SourceOffset));
        Assert.Equal("1700000000000", Last(DeadLetterHeaders.SourceTimestamp));
        Assert.Equal("t-1", Last("trace"));
        Assert.Equal("theirs", letter.Headers.First(h => h.Name == "reason").ValueAsString()); // originals kept, ours last
        Assert.Equal(1, metrics.DeadLetterCount("prefonline.feedback", "binary-data"));
        Assert.Equal(1, metrics.MessageCount("prefonline.feedback", StreamingMetrics.ResultDeadLetter));
    }

    [Fact]
    public async Task Transient_sink_failures_are_retried_until_durable()
    {
        var sink = new FlakySink(failures: 3, transient: true);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics, maxBackoff: TimeSpan.FromMilliseconds(20));
        await router.RouteAsync(Source([1]), new ValidationFailure(ReasonCodes.InvalidJson, "x"), CancellationToken.None);
        Assert.Equal(4, sink.Attempts);
        Assert.Single(sink.Delivered);
        Assert.Equal(1, metrics.DeadLetterCount("prefonline.feedback", ReasonCodes.InvalidJson));
    }

    [Fact]
    public async Task Cancellation_while_the_sink_fails_does_not_count_the_record()
    {
        var sink = new FlakySink(failures: int.MaxValue, transient: true);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics, maxBackoff: TimeSpan.FromMilliseconds(20));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => router.RouteAsync(Source([1]), new ValidationFailure(ReasonCodes.InvalidJson, "x"), cts.Token));
        Assert.Equal(0, metrics.DeadLetterCount("prefonline.feedback", ReasonCodes.InvalidJson));
        Assert.Equal(0, metrics.MessageCount("prefonline.feedback", StreamingMetrics.ResultDeadLetter));
    }

    [Fact]
    public async Task A_permanently_refused_dead_letter_is_replaced_by_a_pointer_without_the_bytes()
    {
        var sink = new FlakySink(failures: 1, transient: false);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics);
        await router.RouteAsync(Source(new byte[1000]), new ValidationFailure(ReasonCodes.RecordTooLarge, "big"), CancellationToken.None);
        var pointer = Assert.Single(sink.Delivered);
        Assert.Empty(pointer.Value);
        Assert.Contains(pointer.Headers!, h => h.Name == DeadLetterHeaders.ForwardError && h.ValueAsString().Contains("refused"));
        Assert.Contains(pointer.Headers!, h => h.Name == DeadLetterHeaders.SourceOffset && h.ValueAsString() == "41");
    }

    private sealed class FlakySink(int failures, bool transient) : IRecordSink
    {
        public int Attempts { get; private set; }

        public List<OutgoingRecord> Delivered { get; } = new();

        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Attempts++;
            if (Attempts <= failures) throw new StreamingException("refused by the test sink", transient);
            Delivered.Add(record);
            return Task.FromResult(new DeliveredRecord(new TopicPartitionId(record.Topic, 0), Delivered.Count - 1));
        }

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
