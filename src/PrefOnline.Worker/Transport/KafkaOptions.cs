using PrefOnline.Streaming.Kafka;

namespace PrefOnline.Worker.Transport;

/// <summary>
/// Configuration section <c>Kafka</c>. Without <see cref="BootstrapServers"/> the worker runs on the
/// embedded in-process transport (the demo). The named keys are the ones the Helm chart sets
/// (PREFONLINE__Kafka__BootstrapServers, __SecurityProtocol, __Sasl*, __Ssl*, __ConsumerGroup, __Topics__*);
/// anything else librdkafka understands goes through <see cref="Settings"/> (both clients),
/// <see cref="ConsumerSettings"/> or <see cref="ProducerSettings"/>. Secrets are never logged.
/// </summary>
public sealed class KafkaOptions
{
    public const string SectionName = "Kafka";

    /// <summary><c>bootstrap.servers</c>, comma separated host:port. Empty = embedded transport with simulated users.</summary>
    public string? BootstrapServers { get; set; }

    /// <summary><c>security.protocol</c>: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.</summary>
    public string SecurityProtocol { get; set; } = "PLAINTEXT";

    /// <summary><c>sasl.mechanism</c> (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...); required with SASL_*.</summary>
    public string? SaslMechanism { get; set; }

    /// <summary><c>sasl.username</c>; from a Secret (the chart's <c>kafka.sasl.existingSecret</c>).</summary>
    public string? SaslUsername { get; set; }

    /// <summary><c>sasl.password</c>; from a Secret, never from values or logs.</summary>
    public string? SaslPassword { get; set; }

    /// <summary><c>ssl.ca.location</c>: CA bundle that signed the brokers' certificates (empty: system CAs).</summary>
    public string? SslCaLocation { get; set; }

    /// <summary><c>ssl.certificate.location</c>: client certificate for mutual TLS.</summary>
    public string? SslCertificateLocation { get; set; }

    /// <summary><c>ssl.key.location</c>: the client certificate's private key.</summary>
    public string? SslKeyLocation { get; set; }

    /// <summary>
    /// Base of the consumer group ids: prompts are read by <c>{ConsumerGroup}.generators</c> (generators and
    /// role all share the prompt partitions), feedback by <c>{ConsumerGroup}.feedback</c> and rollouts (role
    /// learner) by <c>{ConsumerGroup}.rollouts</c> — the names to watch consumer lag by — and each
    /// generator follows the policy topic as its own <c>{ConsumerGroup}.policy.{host}.{pid}</c> (never committed).
    /// </summary>
    public string ConsumerGroup { get; set; } = "prefonline";

    public KafkaTopicsOptions Topics { get; set; } = new();

    /// <summary>librdkafka properties for every client (e.g. <c>client.rack</c>, <c>socket.keepalive.enable</c>).</summary>
    public Dictionary<string, string> Settings { get; set; } = new(StringComparer.Ordinal);

    /// <summary>librdkafka properties for consumers only (e.g. <c>session.timeout.ms</c>, <c>fetch.max.bytes</c>).</summary>
    public Dictionary<string, string> ConsumerSettings { get; set; } = new(StringComparer.Ordinal);

    /// <summary>librdkafka properties for the producer only (e.g. <c>linger.ms</c>, <c>compression.type</c>).</summary>
    public Dictionary<string, string> ProducerSettings { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Records buffered per input between the consumer and the pipeline (bounded memory; see MaxBufferedBytes for the bytes).</summary>
    public int ChannelCapacity { get; set; } = 1024;

    /// <summary>
    /// Bytes of records one input buffers between the consumer and the pipeline: the source's buffers, and again the
    /// validated records waiting for their stage. 0 (default) = 16 × Validation:MaxRecordBytes (4 MiB), at least 1 MiB.
    /// The worst case per input is in docs/OPERATIONS.md, "Memory of the Kafka consumers".
    /// </summary>
    public long MaxBufferedBytes { get; set; }

    /// <summary>
    /// Accept settings in Settings/ConsumerSettings/ProducerSettings that switch off the brokers' TLS certificate check
    /// (enable.ssl.certificate.verification other than true, ssl.endpoint.identification.algorithm other than https).
    /// Default false: such settings stop the worker at start. True: it starts and logs an error saying so at every start.
    /// </summary>
    public bool AllowUnverifiedTls { get; set; }

    /// <summary>How long librdkafka keeps retrying one produced record before the worker sees a failure.</summary>
    public TimeSpan DeliveryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Polly retry and circuit breaker around producing (rollouts, policy events, dead letters).</summary>
    public ProduceResilienceOptions Resilience { get; set; } = new();

    /// <summary>True when no broker is configured: the embedded transport is used.</summary>
    public bool IsEmbedded => string.IsNullOrWhiteSpace(BootstrapServers);

    /// <summary>The named keys as librdkafka properties, then <see cref="Settings"/>, then the client-specific ones (later wins).</summary>
    public Dictionary<string, string> ClientSettings(bool consumer)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!string.IsNullOrWhiteSpace(SecurityProtocol)) settings["security.protocol"] = SecurityProtocol.Trim().ToLowerInvariant();
        if (!string.IsNullOrWhiteSpace(SaslMechanism)) settings["sasl.mechanism"] = SaslMechanism.Trim();
        if (!string.IsNullOrEmpty(SaslUsername)) settings["sasl.username"] = SaslUsername;
        if (!string.IsNullOrEmpty(SaslPassword)) settings["sasl.password"] = SaslPassword;
        if (!string.IsNullOrWhiteSpace(SslCaLocation)) settings["ssl.ca.location"] = SslCaLocation;
        if (!string.IsNullOrWhiteSpace(SslCertificateLocation)) settings["ssl.certificate.location"] = SslCertificateLocation;
        if (!string.IsNullOrWhiteSpace(SslKeyLocation)) settings["ssl.key.location"] = SslKeyLocation;
        foreach (var (key, value) in Settings) settings[key] = value;
        foreach (var (key, value) in consumer ? ConsumerSettings : ProducerSettings) settings[key] = value;
        return settings;
    }

    /// <param name="maxRecordBytes">Validation:MaxRecordBytes: larger records are never read into memory, and the fetch and queue limits derive from it.</param>
    public KafkaSourceOptions SourceOptions(string groupId, IEnumerable<string> topics, int maxRecordBytes) => new()
    {
        BootstrapServers = BootstrapServers ?? "",
        GroupId = groupId,
        Topics = topics.ToList(),
        Settings = ClientSettings(consumer: true),
        ChannelCapacity = ChannelCapacity,
        MaxRecordBytes = maxRecordBytes,
        MaxBufferedBytes = MaxBufferedBytes,
    };

    /// <summary>The byte limit of one input's buffers for records of at most <paramref name="maxRecordBytes"/> (see <see cref="MaxBufferedBytes"/>).</summary>
    public long BufferedBytesFor(int maxRecordBytes) => new KafkaSourceOptions { MaxRecordBytes = maxRecordBytes, MaxBufferedBytes = MaxBufferedBytes }.EffectiveMaxBufferedBytes;

    public KafkaSinkOptions SinkOptions() => new()
    {
        BootstrapServers = BootstrapServers ?? "",
        Settings = ClientSettings(consumer: false),
        DeliveryTimeout = DeliveryTimeout,
        Resilience = Resilience,
    };
}
