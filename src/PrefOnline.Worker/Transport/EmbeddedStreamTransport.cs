using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Transport;

/// <summary>
/// The in-process broker (no Kafka configured): the five topics are created at start, with
/// <see cref="EmbeddedTransportOptions.Partitions"/> partitions each. A new process starts with empty
/// topics, so a checkpoint's offsets from an earlier process are out of range there and reset to the
/// beginning: in the demo nothing survives a restart but the checkpointed model state.
/// </summary>
public sealed class EmbeddedStreamTransport : IStreamTransport
{
    private readonly StreamingMetrics metrics;
    private readonly EmbeddedRecordSink sink;

    public EmbeddedStreamTransport(KafkaTopicsOptions topics, StreamingMetrics metrics, int partitions = 2, int partitionCapacity = 10_000)
    {
        Topics = topics;
        this.metrics = metrics;
        Broker = new EmbeddedBroker(new EmbeddedBrokerOptions { PartitionCapacity = partitionCapacity });
        foreach (var topic in topics.All) Broker.CreateTopic(topic, partitions);
        sink = Broker.CreateSink();
    }

    /// <summary>The broker itself, for the simulated users and tests.</summary>
    public EmbeddedBroker Broker { get; }

    public bool IsEmbedded => true;

    public KafkaTopicsOptions Topics { get; }

    public IRecordSink Sink => sink;

    public IRecordSource Subscribe(string groupId, IReadOnlyList<string> topics, IResumeOffsetProvider resume, SourceStart start = SourceStart.Earliest) =>
        Broker.Subscribe(new EmbeddedSourceOptions
        {
            GroupId = groupId,
            Topics = topics.ToList(),
            OffsetReset = start == SourceStart.Earliest ? OffsetResetPolicy.Earliest : OffsetResetPolicy.Latest,
        }, resume, metrics);

    public BrokerReachability Reachability => BrokerReachability.Reachable;

    public async ValueTask DisposeAsync() => await sink.DisposeAsync();
}
