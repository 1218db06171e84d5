using System.Text;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Kafka;

/// <summary>
/// Issue 15 item 5 without a broker: the librdkafka limits derived from the record size limit, the byte-bounded buffers,
/// the worst case they add up to, oversized records refused and dead-lettered as pointers without their content, and
/// settings that switch off TLS verification recognised.
/// </summary>
public sealed class BoundedConsumerTests
{
    [Fact]
    public void Fetch_and_queue_limits_derive_from_the_record_limit_and_an_explicit_setting_wins()
    {
        var derived = new KafkaSourceOptions { BootstrapServers = "b:9092", Topics = ["t"], MaxRecordBytes = 256 * 1024 }.BuildClientSettings();
        Assert.Equal("262144", derived["max.partition.fetch.bytes"]);
        Assert.Equal("1048576", derived["fetch.max.bytes"]);              // max(4 L, 1 MiB)
        Assert.Equal("2048", derived["queued.max.messages.kbytes"]);      // 2 F, not librdkafka's 64 MiB
        Assert.Equal("2097664", derived["receive.message.max.bytes"]);    // 2 F + 512: a first batch up to 2 MiB still fits

        var large = new KafkaSourceOptions { BootstrapServers = "b:9092", Topics = ["t"], MaxRecordBytes = 1 << 20 }.BuildClientSettings();
        Assert.Equal("4194304", large["fetch.max.bytes"]);

        // fetch.max.bytes given: the queue and the largest response follow it, so librdkafka never sees receive < fetch + 512.
        var given = new KafkaSourceOptions
        {
            BootstrapServers = "b:9092", Topics = ["t"],
            Settings = new Dictionary<string, string> { ["fetch.max.bytes"] = "8388608", ["queued.max.messages.kbytes"] = "4096" },
        }.BuildClientSettings();
        Assert.Equal("8388608", given["fetch.max.bytes"]);
        Assert.Equal("4096", given["queued.max.messages.kbytes"]);
        Assert.Equal("16777728", given["receive.message.max.bytes"]);
    }

    [Fact]
    public void The_worst_case_per_source_is_stated_in_bytes()
    {
        var memory = new KafkaSourceOptions { BootstrapServers = "b1:9092,b2:9092,b3:9092", Topics = ["t"], MaxRecordBytes = 256 * 1024 }.Memory();
        Assert.Equal(4L << 20, memory.BufferedBytes);                 // 16 L
        Assert.Equal(1024 + 1024 + 256, memory.BufferedRecords);      // channel + backlog + one burst
        Assert.Equal(2L << 20, memory.QueuedBytes);
        Assert.Equal(1L << 20, memory.FetchBytes);
        Assert.Equal((2L << 20) + 512, memory.ResponseBytes);
        // managed: 4 MiB + 2,304 × 256 B + L + one response; native: queue + one fetch over it + a response per broker.
        Assert.Equal((4L << 20) + 2304 * 256 + (256 << 10) + (2L << 20) + 512, memory.ManagedBytes);
        Assert.Equal((2L << 20) + (1L << 20) + 3 * ((2L << 20) + 512), memory.NativeBytes(3));
        Assert.InRange(memory.WorstCaseBytes(3) / 1048576.0, 15, 17);
        Assert.StartsWith("at most 15.8 MiB with 3 broker(s)", memory.Describe(3), StringComparison.Ordinal);
        // Before issue 15: librdkafka's 64 MiB queue and 2,304 records of up to 1 MiB each (the broker's limit) copied whole.
        Assert.True(memory.WorstCaseBytes(3) < (64L << 20) / 3);
    }

    [Fact]
    public void A_sized_channel_holds_many_small_items_or_few_large_ones_and_always_one()
    {
        var channel = new SizedChannel<byte[]>(capacity: 100, maxBytes: 1000, costOf: b => b.Length);
        for (var i = 0; i < 100; i++) Assert.True(channel.TryWrite(new byte[5]));
        Assert.False(channel.TryWrite(new byte[1]));                // full by count
        while (channel.Reader.TryRead(out _)) { }
        Assert.Equal(0, channel.Bytes);

        Assert.True(channel.TryWrite(new byte[600]));
        Assert.False(channel.TryWrite(new byte[600]));              // full by bytes
        Assert.True(channel.TryWrite(new byte[400]));
        Assert.Equal(1000, channel.Bytes);
        while (channel.Reader.TryRead(out _)) { }
        Assert.True(channel.TryWrite(new byte[5000]));              // larger than the limit, but alone: progress
        Assert.False(channel.TryWrite(new byte[1]));
    }

    [Fact]
    public async Task A_writer_waits_for_bytes_to_be_read_and_resumes_when_they_are()
    {
        var channel = new SizedChannel<byte[]>(capacity: 100, maxBytes: 1000, costOf: b => b.Length);
        await channel.WriteAsync(new byte[800], CancellationToken.None);
        var blocked = channel.WriteAsync(new byte[800], CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(blocked.IsCompleted);
        Assert.True(channel.Reader.TryRead(out var first));
        Assert.Equal(800, first!.Length);
        await blocked.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(800, channel.Bytes);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => channel.WriteAsync(new byte[800], cancel.Token).AsTask());
    }

    [Fact]
    public void Size_counts_value_key_and_headers_and_an_omitted_record_is_too_large()
    {
        var limits = new ValidationLimits { MaxRecordBytes = 1000 };
        var validator = new RecordValidator(limits, SchemaNames.PromptTopic);
        var prompt = Encoding.UTF8.GetBytes("""{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"hi"}""");
        var position = new TopicPartitionId("prefonline.prompts", 0);
        Assert.True(validator.Validate(new ConsumedRecord(position, 1, "k"u8.ToArray(), prompt, DateTimeOffset.UnixEpoch)).IsValid);

        var heavyHeaders = new ConsumedRecord(position, 2, null, prompt, DateTimeOffset.UnixEpoch, [new RecordHeader("trace", new byte[1000])]);
        Assert.Equal(prompt.Length + 5 + 1000, heavyHeaders.Size);
        var refused = validator.Validate(heavyHeaders);
        Assert.Equal(ReasonCodes.RecordTooLarge, refused.Failure!.Reason);
        Assert.Contains("key and headers 1005", refused.Failure.Detail, StringComparison.Ordinal);

        var omitted = new ConsumedRecord(position, 3, "k"u8.ToArray(), [], DateTimeOffset.UnixEpoch) { Size = 300_000, ContentOmitted = true };
        var tooLarge = validator.Validate(omitted);
        Assert.Equal(ReasonCodes.RecordTooLarge, tooLarge.Failure!.Reason);
        Assert.Contains("300000 bytes", tooLarge.Failure.Detail, StringComparison.Ordinal);
        Assert.Contains("not read into memory", tooLarge.Failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_never_read_into_memory_is_dead_lettered_as_a_pointer_at_once()
    {
        var sink = new RecordingSink();
        using var metrics = new StreamingMetrics();
        var router = new DeadLetterRouter(sink, "prefonline.dlq", metrics);
        var omitted = new ConsumedRecord(new TopicPartitionId("prefonline.feedback", 3), 77, "k-1"u8.ToArray(), [], DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000))
        {
            Size = 300_000,
            ContentOmitted = true,
        };
        await router.RouteAsync(omitted, new ValidationFailure(ReasonCodes.RecordTooLarge, "the record has 300000 bytes"), CancellationToken.None);
        var letter = Assert.Single(sink.Delivered);
        Assert.Empty(letter.Value);
        Assert.Equal("k-1"u8.ToArray(), letter.Key);
        string Header(string name) => letter.Headers!.Single(h => h.Name == name).ValueAsString();
        Assert.Equal("record-too-large", Header(DeadLetterHeaders.Reason));
        Assert.Equal("77", Header(DeadLetterHeaders.SourceOffset));
        Assert.StartsWith("left out: the record (300000 bytes of value, key and headers", Header(DeadLetterHeaders.ForwardError), StringComparison.Ordinal);
        Assert.Contains("the record exceeds the size limit", Header(DeadLetterHeaders.ForwardError), StringComparison.Ordinal);
        Assert.Equal(1, metrics.DeadLetterCount("prefonline.feedback", ReasonCodes.RecordTooLarge));
    }

    [Theory]
    [InlineData("enable.ssl.certificate.verification", "false", true)]
    [InlineData("enable.ssl.certificate.verification", "FALSE", true)]
    [InlineData("enable.ssl.certificate.verification", "0", true)]
    [InlineData("enable.ssl.certificate.verification", "no", true)]
    [InlineData("enable.ssl.certificate.verification", "true", false)]
    [InlineData("enable.ssl.certificate.verification", "t", false)]
    [InlineData("enable.ssl.certificate.verification", "1", false)]
    [InlineData("ssl.endpoint.identification.algorithm", "none", true)]
    [InlineData("ssl.endpoint.identification.algorithm", "", true)]
    [InlineData("ssl.endpoint.identification.algorithm", "https", false)]
    [InlineData("ssl.endpoint.identification.algorithm", "HTTPS", false)]
    [InlineData("ssl.ca.location", "/etc/ssl", false)]
    public void Settings_that_switch_off_certificate_checks_are_recognised(string name, string value, bool disabling)
    {
        var found = KafkaSettings.CertificateCheckDisabled(new Dictionary<string, string> { [name] = value });
        Assert.Equal(disabling, found.Count == 1);
    }

    private sealed class RecordingSink : IRecordSink
    {
        public List<OutgoingRecord> Delivered { get; } = [];

        public BrokerReachability Reachability => BrokerReachability.Reachable;

        public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
        {
            Delivered.Add(record);
            return Task.FromResult(new DeliveredRecord(new TopicPartitionId(record.Topic, 0), Delivered.Count - 1));
        }

        public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
