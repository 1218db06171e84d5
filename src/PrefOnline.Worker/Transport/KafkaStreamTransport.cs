using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Transport;

/// <summary>Kafka through Confluent.Kafka 1.9.3 (the Streaming project's <see cref="KafkaRecordSource"/> and <see cref="KafkaRecordSink"/>).</summary>
public sealed class KafkaStreamTransport : IStreamTransport
{
    private readonly KafkaOptions options;
    private readonly StreamingMetrics metrics;
    private readonly ILoggerFactory loggers;
    private readonly List<WeakReference<IRecordSource>> sources = [];
    private readonly Lock gate = new();
    private readonly KafkaRecordSink sink;

    public KafkaStreamTransport(KafkaOptions options, StreamingMetrics metrics, ILoggerFactory loggers)
    {
        this.options = options;
        this.metrics = metrics;
        this.loggers = loggers;
        sink = KafkaRecordSink.Create(options.SinkOptions(), loggers.CreateLogger<KafkaRecordSink>());
    }

    public bool IsEmbedded => false;

    public KafkaTopicsOptions Topics => options.Topics;

    public IRecordSink Sink => sink;

    public IRecordSource Subscribe(string groupId, IReadOnlyList<string> topics, IResumeOffsetProvider resume, SourceStart start = SourceStart.Earliest)
    {
        var sourceOptions = options.SourceOptions(groupId, topics);
        if (!sourceOptions.Settings.ContainsKey("auto.offset.reset"))
            sourceOptions.Settings["auto.offset.reset"] = start == SourceStart.Earliest ? "earliest" : "latest";
        var source = KafkaRecordSource.Start(sourceOptions, resume, loggers.CreateLogger<KafkaRecordSource>(), metrics);
        lock (gate)
        {
            sources.RemoveAll(w => !w.TryGetTarget(out _));
            sources.Add(new WeakReference<IRecordSource>(source));
        }
        return source;
    }

    /// <summary>Unreachable as soon as the sink or any live source has lost every broker; reachable once they all have one.</summary>
    public BrokerReachability Reachability
    {
        get
        {
            var states = new List<BrokerReachability> { sink.Reachability };
            lock (gate)
            {
                foreach (var weak in sources)
                {
                    if (weak.TryGetTarget(out var source)) states.Add(source.Reachability);
                }
            }
            if (states.Contains(BrokerReachability.Unreachable)) return BrokerReachability.Unreachable;
            return states.All(s => s == BrokerReachability.Reachable) ? BrokerReachability.Reachable : BrokerReachability.Unknown;
        }
    }

    public async ValueTask DisposeAsync() => await sink.DisposeAsync();
}
