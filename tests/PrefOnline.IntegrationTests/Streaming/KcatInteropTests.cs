using System.Text;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>An independent Kafka client (Debian's kcat) reads what we produce and we read what it produces.</summary>
[Collection(KafkaCollection.Name)]
public sealed class KcatInteropTests
{
    [Fact]
    public async Task Kcat_consumes_what_the_sink_produces_with_keys_and_headers()
    {
        var kcat = ExternalTools.Kcat;
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic("out", 1);
        await using (var sink = KafkaRecordSink.Create(Sink(cluster.BootstrapServers)))
        {
            for (var i = 0; i < 20; i++)
            {
                await sink.ProduceAsync(new OutgoingRecord("out", Encoding.UTF8.GetBytes($"key-{i}"), Encoding.UTF8.GetBytes($"{{\"n\":{i},\"text\":\"é😀\"}}"), [RecordHeader.Utf8("reason", $"r{i}")]), CancellationToken.None);
            }
        }
        var output = await ExternalTools.RunAsync(kcat, ["-C", "-b", cluster.BootstrapServers, "-t", "out", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h|%o\n"], TestTimeout);
        var expected = Enumerable.Range(0, 20).Select(i => $"key-{i}|{{\"n\":{i},\"text\":\"é😀\"}}|reason=r{i}|{i}");
        Assert.Equal(expected, output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task The_source_consumes_what_kcat_produces()
    {
        var kcat = ExternalTools.Kcat;
        using var cluster = MockKafkaCluster.Start();
        cluster.CreateTopic("in", 1);
        var lines = Enumerable.Range(0, 10).Select(i => $"k{i}:v{i}").ToArray();
        await ExternalTools.RunAsync(kcat, ["-P", "-b", cluster.BootstrapServers, "-t", "in", "-K", ":"], TestTimeout, stdin: string.Join('\n', lines) + "\n");
        await using var source = KafkaRecordSource.Start(Source(cluster.BootstrapServers, "g", "in"), new OffsetTracker());
        var records = await Eventually.ReadAsync(source.Records, 10, TestTimeout);
        Assert.Equal(lines, records.Select(r => $"{Encoding.UTF8.GetString(r.Key!)}:{Encoding.UTF8.GetString(r.Value)}"));
    }
}
