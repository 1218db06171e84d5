using System.Text;
using PrefOnline.IntegrationTests.Process;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>Broker outages through the mock cluster's fault API: the source and the sink recover by themselves.</summary>
[Collection(KafkaCollection.Name)]
public sealed class KafkaOutageTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Topic = "in";

    [Fact]
    public async Task Broker_down_then_up_the_source_and_producer_recover_with_nothing_lost()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 2);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers), new TestOutputLogger<KafkaRecordSink>(output));
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker(), new TestOutputLogger<KafkaRecordSource>(output));

        var received = new List<string>();
        using var cts = new CancellationTokenSource(TestTimeout * 2);
        var reading = Task.Run(async () =>
        {
            await foreach (var record in source.Records.ReadAllAsync(cts.Token))
            {
                lock (received) received.Add(Encoding.UTF8.GetString(record.Value));
            }
        });

        const int total = 200;
        var outageStarted = new TaskCompletionSource();
        var producing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                if (i == 50) await outageStarted.Task;
                // Each call returns only once durable: through the outage it waits (librdkafka retries), never fails.
                await sink.ProduceAsync(new OutgoingRecord(Topic, Encoding.UTF8.GetBytes($"k{i % 7}"), Encoding.UTF8.GetBytes($"v{i}")), cts.Token);
            }
        });

        await Eventually.TrueAsync(() => { lock (received) return received.Count >= 50; }, TestTimeout, "50 records through before the outage");
        cluster.SetBrokerDown();
        outageStarted.SetResult();
        await Eventually.TrueAsync(() => sink.Reachability == BrokerReachability.Unreachable, TestTimeout, "the sink notices the outage");
        await Eventually.TrueAsync(() => source.Reachability == BrokerReachability.Unreachable, TestTimeout, "the source notices the outage");
        Assert.False(producing.IsCompleted, "nothing can be durable while the broker is down");
        await Assert.ThrowsAsync<StreamingException>(() => source.CommitAsync([new ResumeOffset(Topic, 0, 1)], CancellationToken.None));

        cluster.SetBrokerUp();
        await producing.WaitAsync(TestTimeout);
        await Eventually.TrueAsync(() => { lock (received) return received.Distinct().Count() == total; }, TestTimeout, "every record consumed after recovery");
        await Eventually.TrueAsync(() => sink.Reachability == BrokerReachability.Reachable && source.Reachability == BrokerReachability.Reachable, TestTimeout, "both report reachable again");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);

        Assert.Equal(Enumerable.Range(0, total).Select(i => $"v{i}").Order(), received.Distinct().Order());
        // The idempotent producer wrote each record exactly once.
        var log = await Task.Run(() => ReadAll(cluster.BootstrapServers, Topic, 2, total));
        Assert.Equal(total, log.Select(r => Encoding.UTF8.GetString(r.Message.Value)).Distinct().Count());
        Assert.Equal(0, source.ClientRebuilds);
        await source.CommitAsync([new ResumeOffset(Topic, 0, 1)], CancellationToken.None);
    }

    [Fact]
    public async Task Injected_fetch_and_produce_errors_do_not_stop_the_loop_or_duplicate_records()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 1);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker());
        await sink.ProduceAsync(new OutgoingRecord(Topic, null, "warm-up"u8.ToArray()), CancellationToken.None);
        await Eventually.ReadAsync(source.Records, 1, TestTimeout);

        cluster.PushRequestErrors(KafkaApiKey.Produce, Confluent.Kafka.ErrorCode.NotEnoughReplicas, Confluent.Kafka.ErrorCode.RequestTimedOut, Confluent.Kafka.ErrorCode.Local_Transport, Confluent.Kafka.ErrorCode.NotLeaderForPartition);
        cluster.PushRequestErrors(KafkaApiKey.Fetch, Confluent.Kafka.ErrorCode.NotLeaderForPartition, Confluent.Kafka.ErrorCode.Local_Transport, Confluent.Kafka.ErrorCode.RequestTimedOut);
        var key = "same-partition"u8.ToArray();
        var deliveries = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => sink.ProduceAsync(new OutgoingRecord(Topic, key, Encoding.UTF8.GetBytes($"v{i}")), CancellationToken.None)));

        var records = await Eventually.ReadAsync(source.Records, 100, TestTimeout);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i}"), records.Select(r => Encoding.UTF8.GetString(r.Value)));
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), deliveries.Select(d => d.Offset).Order());
        Assert.Equal(0, source.ClientRebuilds);
    }

    [Fact]
    public async Task A_fatal_idempotent_producer_error_rebuilds_the_producer_and_delivery_goes_on()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 1);
        var options = Sink(cluster.BootstrapServers);
        options.Resilience = new ProduceResilienceOptions { MaxRetries = 3, RetryBaseDelay = TimeSpan.FromMilliseconds(50) };
        await using var sink = KafkaRecordSink.Create(options, new TestOutputLogger<KafkaRecordSink>(output));
        await sink.ProduceAsync(new OutgoingRecord(Topic, null, "first"u8.ToArray()), CancellationToken.None);

        // An out-of-order sequence breaks the idempotence state: librdkafka raises a fatal error.
        cluster.PushRequestErrors(KafkaApiKey.Produce, Confluent.Kafka.ErrorCode.OutOfOrderSequenceNumber);
        await sink.ProduceAsync(new OutgoingRecord(Topic, null, "second"u8.ToArray()), CancellationToken.None);
        await sink.ProduceAsync(new OutgoingRecord(Topic, null, "third"u8.ToArray()), CancellationToken.None);

        Assert.Equal(1, sink.ProducerRebuilds);
        var log = await Task.Run(() => ReadAll(cluster.BootstrapServers, Topic, 1, 3));
        Assert.Equal(["first", "second", "third"], log.Select(r => Encoding.UTF8.GetString(r.Message.Value)));
    }

    [Fact]
    public async Task After_repeated_delivery_failures_the_circuit_opens_and_later_closes_again()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 1);
        var options = Sink(cluster.BootstrapServers);
        options.DeliveryTimeout = TimeSpan.FromSeconds(1);
        options.Resilience = new ProduceResilienceOptions
        {
            MaxRetries = 1,
            RetryBaseDelay = TimeSpan.FromMilliseconds(50),
            RetryMaxDelay = TimeSpan.FromMilliseconds(100),
            MinimumThroughput = 2,
            FailureRatio = 0.5,
            BreakDuration = TimeSpan.FromSeconds(1),
        };
        await using var sink = KafkaRecordSink.Create(options);
        await sink.ProduceAsync(new OutgoingRecord(Topic, null, "before"u8.ToArray()), CancellationToken.None);

        cluster.SetBrokerDown();
        var first = await Assert.ThrowsAsync<StreamingException>(() => sink.ProduceAsync(new OutgoingRecord(Topic, null, "lost-1"u8.ToArray()), CancellationToken.None));
        Assert.True(first.IsTransient);
        var open = await Assert.ThrowsAsync<StreamingException>(() => sink.ProduceAsync(new OutgoingRecord(Topic, null, "lost-2"u8.ToArray()), CancellationToken.None));
        Assert.Contains("circuit open", open.Message);
        Assert.True(open.IsTransient);

        cluster.SetBrokerUp();
        DeliveredRecord? delivered = null;
        StreamingException? last = null;
        await Poll.UntilAsync(async () =>
        {
            try
            {
                delivered = await sink.ProduceAsync(new OutgoingRecord(Topic, null, "after"u8.ToArray()), CancellationToken.None);
                return true;
            }
            catch (StreamingException e)
            {
                last = e; // still open, or the half-open trial raced the reconnect: poll again
                return false;
            }
        }, TestTimeout, "a record delivered after the broker came back", () => $"last attempt: {last?.Message}");
        Assert.NotNull(delivered);
    }
}
