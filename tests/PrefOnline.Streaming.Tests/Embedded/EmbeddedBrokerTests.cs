using System.Text;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Tests.Embedded;

public sealed class EmbeddedBrokerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static OutgoingRecord Record(string topic, string value, string? key = null) =>
        new(topic, key is null ? null : Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    private static string Text(ConsumedRecord record) => Encoding.UTF8.GetString(record.Value);

    [Fact]
    public async Task Records_are_delivered_in_offset_order_with_keys_partitioned_like_kafka()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 3);
        var sink = broker.CreateSink();
        var delivered = new List<DeliveredRecord>();
        for (var i = 0; i < 30; i++) delivered.Add(await sink.ProduceAsync(Record("t", $"v{i}", key: $"k{i % 5}"), CancellationToken.None));
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(KeyPartitioner.PartitionFor(Encoding.UTF8.GetBytes($"k{i % 5}"), 3), delivered[i].Partition.Partition);
        }

        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, new OffsetTracker());
        var records = await Eventually.ReadAsync(source.Records, 30, Timeout);
        Assert.Equal(30, records.Select(Text).Distinct().Count());
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            var offsets = partition.Select(r => r.Offset).ToArray();
            Assert.Equal(Enumerable.Range(0, offsets.Length).Select(o => (long)o), offsets);
        }
    }

    [Fact]
    public async Task Assignment_resumes_at_the_supplied_offsets_then_committed_then_the_reset_policy()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 2);
        var sink = broker.CreateSink();
        var pa = KeyPartitioner.PartitionFor("a"u8, 2);
        var keyB = Enumerable.Range(0, 100).Select(i => $"b{i}").First(k => KeyPartitioner.PartitionFor(Encoding.UTF8.GetBytes(k), 2) != pa);
        var pb = 1 - pa;
        for (var i = 0; i < 10; i++)
        {
            await sink.ProduceAsync(Record("t", $"a{i}", key: "a"), CancellationToken.None);
            await sink.ProduceAsync(Record("t", $"b{i}", key: keyB), CancellationToken.None);
        }

        // The provider knows partition a; the group committed b at 7.
        var tracker = new OffsetTracker([new ResumeOffset("t", pa, 4)]);
        await using (var committer = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, new OffsetTracker()))
        {
            await committer.CommitAsync([new ResumeOffset("t", pb, 7)], CancellationToken.None);
        }
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, tracker);
        var records = await Eventually.ReadAsync(source.Records, 6 + 3, Timeout);
        Assert.Equal(4, records.Where(r => r.Partition.Partition == pa).Min(r => r.Offset));
        Assert.Equal(7, records.Where(r => r.Partition.Partition == pb).Min(r => r.Offset));

        // Out of range (e.g. a checkpoint from another broker's lifetime): earliest.
        await using var late = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "other", Topics = { "t" } }, new OffsetTracker([new ResumeOffset("t", pa, 999)]));
        var first = await Eventually.ReadAsync(late.Records, 20, Timeout);
        Assert.Equal(0, first.Where(r => r.Partition.Partition == pa).Min(r => r.Offset));
    }

    [Fact]
    public async Task Members_of_a_group_split_partitions_and_take_over_when_one_leaves()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 4);
        var one = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, new OffsetTracker());
        await using var two = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, new OffsetTracker());
        Assert.Equal(2, one.Assignment.Count);
        Assert.Equal(2, two.Assignment.Count);
        Assert.Empty(one.Assignment.Intersect(two.Assignment));
        await one.CloseAsync(CancellationToken.None);
        Assert.Equal(4, two.Assignment.Count);
        Assert.False(await one.Records.WaitToReadAsync());
    }

    [Fact]
    public async Task Commits_are_stored_per_group_and_readable_back()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 1);
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" } }, new OffsetTracker());
        var p0 = new TopicPartitionId("t", 0);
        Assert.Null((await source.GetCommittedAsync([p0], CancellationToken.None))[p0]);
        await source.CommitAsync([new ResumeOffset(p0, 12)], CancellationToken.None);
        Assert.Equal(12, (await source.GetCommittedAsync([p0], CancellationToken.None))[p0]);
        Assert.Equal(12, broker.GetCommitted("g")[p0]);
        Assert.Empty(broker.GetCommitted("other"));
    }

    [Fact]
    public async Task A_full_partition_makes_producers_wait_until_the_group_reads_and_loses_nothing()
    {
        var broker = new EmbeddedBroker(new EmbeddedBrokerOptions { PartitionCapacity = 10 });
        broker.CreateTopic("t", 1);
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" }, ChannelCapacity = 5 }, new OffsetTracker());
        var sink = broker.CreateSink();

        var producing = Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++) await sink.ProduceAsync(Record("t", $"v{i}"), CancellationToken.None);
        });
        // Capacity 10 in the log + 5 in the channel: the producer must block well before 100.
        await Eventually.TrueAsync(() => broker.GetWatermarks(new TopicPartitionId("t", 0)).End >= 15, Timeout, "the log fills up");
        Assert.False(producing.IsCompleted);
        Assert.True(broker.GetWatermarks(new TopicPartitionId("t", 0)).End <= 16);

        var records = await Eventually.ReadAsync(source.Records, 100, Timeout);
        await producing.WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i}"), records.Select(Text));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), records.Select(r => r.Offset));
    }

    [Fact]
    public async Task A_topic_nobody_reads_keeps_only_its_capacity()
    {
        var broker = new EmbeddedBroker(new EmbeddedBrokerOptions { PartitionCapacity = 10 });
        broker.CreateTopic("dlq", 1);
        var sink = broker.CreateSink();
        for (var i = 0; i < 1000; i++) await sink.ProduceAsync(Record("dlq", $"v{i}"), CancellationToken.None);
        var (start, end) = broker.GetWatermarks(new TopicPartitionId("dlq", 0));
        Assert.Equal(1000, end);
        Assert.InRange(end - start, 1, 10);
    }

    [Fact]
    public async Task Unknown_topics_are_an_error_unless_auto_creation_is_on()
    {
        var strict = new EmbeddedBroker();
        strict.CreateTopic("known", 1);
        var e = await Assert.ThrowsAsync<StreamingException>(() => strict.CreateSink().ProduceAsync(Record("typo", "x"), CancellationToken.None));
        Assert.False(e.IsTransient);
        Assert.Contains("known", e.Message);

        var lenient = new EmbeddedBroker(new EmbeddedBrokerOptions { AutoCreateTopics = true, DefaultPartitions = 2 });
        await lenient.CreateSink().ProduceAsync(Record("new", "x"), CancellationToken.None);
        Assert.Equal(2, lenient.Topics["new"]);
    }

    [Fact]
    public async Task Lag_counts_records_not_yet_delivered()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 1);
        var sink = broker.CreateSink();
        for (var i = 0; i < 50; i++) await sink.ProduceAsync(Record("t", $"v{i}"), CancellationToken.None);
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" }, ChannelCapacity = 8 }, new OffsetTracker());
        await Eventually.TrueAsync(() => source.GetLag().Single().Lag == 42, Timeout, "8 records in the channel, 42 waiting");
        await Eventually.ReadAsync(source.Records, 50, Timeout);
        await Eventually.TrueAsync(() => source.GetLag().Single().Lag == 0, Timeout, "everything delivered");
    }
}
