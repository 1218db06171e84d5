using System.Text;
using Confluent.Kafka;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>The Kafka source's delivery contract against librdkafka's mock cluster with real clients.</summary>
[Collection(KafkaCollection.Name)]
public sealed class KafkaSourceTests
{
    private const string Topic = "in";

    /// <summary>A key that the murmur2 partitioner puts in <paramref name="partition"/> of <paramref name="partitions"/>.</summary>
    private static string KeyFor(int partition, int partitions) =>
        Enumerable.Range(0, 1000).Select(i => $"k{i}").First(k => KeyPartitioner.PartitionFor(Encoding.UTF8.GetBytes(k), partitions) == partition);

    private static async Task ProduceAsync(IRecordSink sink, int partition, int count, int partitions = 2)
    {
        var key = Encoding.UTF8.GetBytes(KeyFor(partition, partitions));
        for (var i = 0; i < count; i++)
        {
            var delivered = await sink.ProduceAsync(new OutgoingRecord(Topic, key, Encoding.UTF8.GetBytes($"p{partition}-{i}")), CancellationToken.None);
            // The sink's murmur2_random partitioner agrees with the embedded transport's.
            Assert.Equal(partition, delivered.Partition.Partition);
        }
    }

    [Fact]
    public async Task On_assignment_the_source_seeks_to_the_supplied_offsets_else_to_the_committed_ones()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 2);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        await ProduceAsync(sink, 0, 10);
        await ProduceAsync(sink, 1, 10);

        await using (var first = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker()))
        {
            await Eventually.ReadAsync(first.Records, 1, TestTimeout); // joined and assigned
            await first.CommitAsync([new ResumeOffset(Topic, 1, 6)], CancellationToken.None);
            await first.CloseAsync(CancellationToken.None);
        }

        // The checkpoint knows partition 0 (offset 3); partition 1 falls back to the group's commit (6).
        var checkpoint = new OffsetTracker([new ResumeOffset(Topic, 0, 3)]);
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), checkpoint);
        var records = await Eventually.ReadAsync(source.Records, 7 + 4, TestTimeout);
        Assert.Equal(Enumerable.Range(3, 7).Select(i => (long)i), records.Where(r => r.Partition.Partition == 0).Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(6, 4).Select(i => (long)i), records.Where(r => r.Partition.Partition == 1).Select(r => r.Offset));
        Assert.Equal("p0-3", Encoding.UTF8.GetString(records.First(r => r.Partition.Partition == 0).Value));
    }

    [Fact]
    public async Task Nothing_is_committed_until_told_and_commits_are_readable_back()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 2);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        await ProduceAsync(sink, 0, 5);

        var p0 = Id(Topic, 0);
        var p1 = Id(Topic, 1);
        await using (var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker()))
        {
            await Eventually.ReadAsync(source.Records, 5, TestTimeout);
            var before = await source.GetCommittedAsync([p0, p1], CancellationToken.None);
            Assert.Null(before[p0]);
            Assert.Null(before[p1]);

            await source.CommitAsync([new ResumeOffset(p0, 4)], CancellationToken.None);
            Assert.Equal(4, (await source.GetCommittedAsync([p0], CancellationToken.None))[p0]);
            await Eventually.TrueAsync(() => source.GetLag().Any(l => l.Partition == p0 && l.Committed == 4 && l.HighWatermark == 5 && l.Lag == 0), TestTimeout, "lag shows the commit and the high watermark");
        }

        // Another client of the group reads the same commit back from the broker.
        KafkaNative.EnsureLoaded();
        using var raw = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "g" }).Build();
        var committed = await Task.Run(() => raw.Committed([new TopicPartition(Topic, 0), new TopicPartition(Topic, 1)], TestTimeout));
        Assert.Equal(4, committed.Single(c => c.Partition.Value == 0).Offset.Value);
        Assert.True(committed.Single(c => c.Partition.Value == 1).Offset.IsSpecial);
    }

    [Fact]
    public async Task A_slow_reader_holds_the_source_back_and_loses_or_repeats_nothing()
    {
        await BackpressureRoundAsync(stallPauseAfter: TimeSpan.FromSeconds(30), expectPause: false);
    }

    [Fact]
    public async Task A_long_stall_pauses_the_partitions_keeps_the_membership_and_loses_or_repeats_nothing()
    {
        // Stalled longer than StallPauseAfter: pause (purges librdkafka's prefetch), keep polling, resume.
        await BackpressureRoundAsync(stallPauseAfter: TimeSpan.FromSeconds(1), expectPause: true);
    }

    private static async Task BackpressureRoundAsync(TimeSpan stallPauseAfter, bool expectPause)
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 2);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        var producing = Task.WhenAll(ProduceAsync(sink, 0, 500), ProduceAsync(sink, 1, 500));
        var options = Source(cluster.BootstrapServers, "g", Topic);
        options.ChannelCapacity = 5;
        options.StallPauseAfter = stallPauseAfter;
        await using var source = KafkaRecordSource.Start(options, new OffsetTracker());
        await producing;

        // Nobody reads: the source holds the channel (5) plus its bounded backlog (256, plus at most one
        // burst of 256) and reports the rest as lag, while staying in the group.
        await Eventually.TrueAsync(() => source.GetLag().Sum(l => l.Lag ?? 0) >= 1000 - 5 - 512, TestTimeout, "lag of the undelivered records is visible");
        if (expectPause) await Eventually.TrueAsync(() => source.IsPaused, TestTimeout, "the stalled source pauses its partitions");
        else Assert.False(source.IsPaused);
        Assert.Equal(2, source.Assignment.Count);
        Assert.Equal(5, source.Records.Count);

        var records = new List<ConsumedRecord>();
        while (records.Count < 1000)
        {
            // A slow reader: the source waits, drains and refills many times on the way.
            records.AddRange(await Eventually.ReadAsync(source.Records, 100, TestTimeout));
            await Task.Delay(50);
        }
        foreach (var partition in records.GroupBy(r => r.Partition.Partition))
        {
            Assert.Equal(Enumerable.Range(0, 500).Select(i => (long)i), partition.Select(r => r.Offset));
            Assert.Equal(Enumerable.Range(0, 500).Select(i => $"p{partition.Key}-{i}"), partition.Select(r => Encoding.UTF8.GetString(r.Value)));
        }
        await Eventually.TrueAsync(() => source.GetLag().All(l => l.Lag == 0), TestTimeout, "lag drops to zero");
        Assert.False(source.IsPaused);
    }

    [Fact]
    public async Task Headers_keys_and_timestamps_arrive_as_produced()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 1);
        await using var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers));
        await sink.ProduceAsync(new OutgoingRecord(Topic, "key"u8.ToArray(), "value"u8.ToArray(), [RecordHeader.Utf8("trace", "t-1"), new RecordHeader("bin", [0, 255])]), CancellationToken.None);
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker());
        var record = (await Eventually.ReadAsync(source.Records, 1, TestTimeout)).Single();
        Assert.Equal("key"u8.ToArray(), record.Key);
        Assert.Equal("value"u8.ToArray(), record.Value);
        Assert.Equal(["trace", "bin"], record.Headers.Select(h => h.Name));
        Assert.Equal(new byte[] { 0, 255 }, record.Headers[1].Value);
        Assert.InRange(record.Timestamp, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
    }

    [Fact]
    public async Task Closing_leaves_the_group_and_completes_the_channel()
    {
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic(Topic, 1);
        var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", Topic), new OffsetTracker());
        await Eventually.TrueAsync(() => source.Assignment.Count == 1, TestTimeout, "assigned");
        await source.CloseAsync(CancellationToken.None);
        Assert.False(await source.Records.WaitToReadAsync());
        Assert.Empty(source.Assignment);
        await source.DisposeAsync();
    }
}
