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

    [Fact]
    public async Task A_record_whose_headers_alone_exceed_the_dead_letter_topics_limit_gets_a_pointer_that_fits()
    {
        // Two headers of 600 KB each: the original's dead letter (which copies them) can never fit in 1 MB.
        var sink = new SizeLimitedSink(maxBytes: 1_000_000);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics);
        var huge = new[] { new RecordHeader("trace", new byte[600_000]), new RecordHeader("baggage", new byte[600_000]) };
        var record = new ConsumedRecord(new TopicPartitionId("prefonline.feedback", 3), 77, "k-1"u8.ToArray(), "{\"x\":1}"u8.ToArray(), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), huge);

        await router.RouteAsync(record, new ValidationFailure(ReasonCodes.MissingSchema, "the record has no 'schema' field"), CancellationToken.None);

        Assert.Equal(2, sink.Attempts);
        var pointer = Assert.Single(sink.Delivered);
        Assert.True(SizeLimitedSink.SizeOf(pointer) <= 8 * 1024, $"the pointer has {SizeLimitedSink.SizeOf(pointer)} bytes");
        Assert.Empty(pointer.Value);
        Assert.Equal("k-1"u8.ToArray(), pointer.Key);
        Assert.DoesNotContain(pointer.Headers!, h => h.Name is "trace" or "baggage");
        string Header(string name) => pointer.Headers!.Single(h => h.Name == name).ValueAsString();
        Assert.Equal(ReasonCodes.MissingSchema, Header(DeadLetterHeaders.Reason));
        Assert.Equal("the record has no 'schema' field", Header(DeadLetterHeaders.Detail));
        Assert.Equal("prefonline.feedback", Header(DeadLetterHeaders.SourceTopic));
        Assert.Equal("3", Header(DeadLetterHeaders.SourcePartition));
        Assert.Equal("77", Header(DeadLetterHeaders.SourceOffset));
        Assert.Equal("1700000000000", Header(DeadLetterHeaders.SourceTimestamp));
        Assert.StartsWith("left out: the value (7 bytes), the original headers (2, 1200012 bytes); the dead-letter topic refused the record: ", Header(DeadLetterHeaders.ForwardError));
        Assert.Contains("MsgSizeTooLarge", Header(DeadLetterHeaders.ForwardError));
        Assert.Equal(1, metrics.DeadLetterCount("prefonline.feedback", ReasonCodes.MissingSchema));
    }

    [Fact]
    public async Task An_empty_record_with_huge_headers_and_a_huge_key_still_gets_a_bounded_pointer()
    {
        // A tombstone carries no value: the first dead letter is refused for its headers and key alone.
        var sink = new SizeLimitedSink(maxBytes: 100_000);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics);
        var record = new ConsumedRecord(new TopicPartitionId("prefonline.prompts", 0), 5, new byte[200_000], [], DateTimeOffset.UnixEpoch,
            [new RecordHeader("blob", new byte[150_000])]);
        var detail = new string('é', 5_000) + "\nsecond line";

        await router.RouteAsync(record, new ValidationFailure(ReasonCodes.EmptyRecord, detail), CancellationToken.None);

        var pointer = Assert.Single(sink.Delivered);
        Assert.Null(pointer.Key);
        Assert.Empty(pointer.Value);
        Assert.Equal(7, pointer.Headers!.Count);
        Assert.True(SizeLimitedSink.SizeOf(pointer) <= 8 * 1024, $"the pointer has {SizeLimitedSink.SizeOf(pointer)} bytes");
        Assert.Contains("the key (200000 bytes)", pointer.Headers!.Single(h => h.Name == DeadLetterHeaders.ForwardError).ValueAsString());
        Assert.Equal(DeadLetterHeaders.MaxDetailLength, pointer.Headers!.Single(h => h.Name == DeadLetterHeaders.Detail).ValueAsString().Length);
        Assert.Equal(1, metrics.DeadLetterCount("prefonline.prompts", ReasonCodes.EmptyRecord));
    }

    [Fact]
    public async Task A_pointer_refused_as_well_is_fatal_after_one_try()
    {
        var sink = new FlakySink(failures: int.MaxValue, transient: false);
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "dlq", metrics);
        await Assert.ThrowsAsync<StreamingException>(() => router.RouteAsync(Source([1]), new ValidationFailure(ReasonCodes.InvalidJson, "x"), CancellationToken.None));
        Assert.Equal(2, sink.Attempts);
        Assert.Equal(0, metrics.DeadLetterCount("prefonline.feedback", ReasonCodes.InvalidJson));
    }

    /// <summary>Refuses, permanently and the way Kafka does (key + value + headers against message.max.bytes), every record above its limit.</summary>
    private sealed class SizeLimitedSink(int maxBytes) : IRecordSink
    {
        public int Attempts { get; private set; }

        public List<OutgoingRecord> Delivered { get; } = new();

        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public static long SizeOf(OutgoingRecord record) =>
            (record.Key?.Length ?? 0) + record.Value.Length + (record.Headers ?? []).Sum(h => (long)Encoding.UTF8.GetByteCount(h.Name) + h.Value.Length);

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
        {
            Attempts++;
            var size = SizeOf(record);
            if (size > maxBytes) throw new StreamingException($"producing to {record.Topic} failed: MsgSizeTooLarge Message size {size} exceeds {maxBytes}", isTransient: false);
            Delivered.Add(record);
            return Task.FromResult(new DeliveredRecord(new TopicPartitionId(record.Topic, 0), Delivered.Count - 1));
        }

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
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
