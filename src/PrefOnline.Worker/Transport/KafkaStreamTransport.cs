using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Transport;

/// <summary>
/// Kafka through Confluent.Kafka 2.16 on librdkafka.redist's 2.16 (the Streaming project's <see cref="KafkaRecordSource"/> and <see cref="KafkaRecordSink"/>).
/// Every source reads records of at most <c>Validation:MaxRecordBytes</c> into memory and gets librdkafka fetch and queue
/// limits derived from it (docs/OPERATIONS.md, "Memory of the Kafka consumers"). At creation it says loudly what weakens
/// transport security: an error line for every accepted setting that switches off the brokers' certificate check
/// (<c>Kafka:AllowUnverifiedTls</c>), a warning for a protocol without TLS.
/// </summary>
public sealed class KafkaStreamTransport : IStreamTransport
{
    private readonly KafkaOptions options;
    private readonly int maxRecordBytes;
    private readonly StreamingMetrics metrics;
    private readonly ILoggerFactory loggers;
    private readonly List<WeakReference<IRecordSource>> sources = [];
    private readonly Lock gate = new();
    private readonly KafkaRecordSink sink;

    /// <param name="maxRecordBytes">Validation:MaxRecordBytes.</param>
    public KafkaStreamTransport(KafkaOptions options, int maxRecordBytes, StreamingMetrics metrics, ILoggerFactory loggers)
    {
        this.options = options;
        this.maxRecordBytes = maxRecordBytes;
        this.metrics = metrics;
        this.loggers = loggers;
        var logger = loggers.CreateLogger<KafkaStreamTransport>();
        // Which librdkafka runs is a fact an operator needs when reading a broker issue: say it once at start.
        logger.LogInformation("Kafka client: Confluent.Kafka {ClientVersion}, librdkafka {LibrdkafkaVersion} ({LibrdkafkaPath})",
            KafkaNative.ClientVersion, KafkaNative.LibrdkafkaVersion, KafkaNative.LibrdkafkaPath);
        foreach (var (section, settings) in new[] { ("Settings", options.Settings), ("ConsumerSettings", options.ConsumerSettings), ("ProducerSettings", options.ProducerSettings) })
        {
            foreach (var (name, value, why) in KafkaSettings.CertificateCheckDisabled(settings))
                logger.LogError("INSECURE: Kafka:{Section}:{Name}={Value}: {Why}; whoever sits between this worker and the brokers can read and forge every record and the SASL credentials. Accepted only because Kafka:AllowUnverifiedTls is true",
                    section, name, value, why);
        }
        var protocol = options.SecurityProtocol.Trim().ToUpperInvariant();
        if (protocol is "PLAINTEXT" or "SASL_PLAINTEXT")
            logger.LogWarning("Kafka:SecurityProtocol is {Protocol}: records{Credentials} travel unencrypted to {Brokers}; use SASL_SSL outside a test bed (docs/OPERATIONS.md, \"Security\")",
                protocol, protocol == "SASL_PLAINTEXT" && string.Equals(options.SaslMechanism?.Trim(), "PLAIN", StringComparison.OrdinalIgnoreCase) ? " and the SASL password" : "", options.BootstrapServers);
        sink = KafkaRecordSink.Create(options.SinkOptions(), loggers.CreateLogger<KafkaRecordSink>());
    }

    public bool IsEmbedded => false;

    public KafkaTopicsOptions Topics => options.Topics;

    public IRecordSink Sink => sink;

    public IRecordSource Subscribe(string groupId, IReadOnlyList<string> topics, IResumeOffsetProvider resume, SourceStart start = SourceStart.Earliest)
    {
        var sourceOptions = options.SourceOptions(groupId, topics, maxRecordBytes);
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
