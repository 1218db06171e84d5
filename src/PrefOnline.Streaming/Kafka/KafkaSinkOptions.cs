using System.Globalization;

namespace PrefOnline.Streaming.Kafka;

/// <summary>Configuration of the process's producer (rollouts, policy events, dead letters).</summary>
public sealed class KafkaSinkOptions
{
    /// <summary><c>bootstrap.servers</c>.</summary>
    public string BootstrapServers { get; set; } = "";

    /// <summary>
    /// Any librdkafka producer property, passed through (security.protocol, sasl.*, ssl.*, linger.ms,
    /// compression.type...). Secrets are never logged. <c>enable.idempotence=true</c> and
    /// <c>acks=all</c> are fixed: internal retries can then never duplicate or reorder records.
    /// Defaults when absent: <c>linger.ms=5</c>, <c>partitioner=murmur2_random</c> (the Java client's key
    /// hashing, so keyed records land where JVM producers would put them), <c>message.timeout.ms</c> from
    /// <see cref="DeliveryTimeout"/>.
    /// </summary>
    public IDictionary<string, string> Settings { get; set; } = new Dictionary<string, string>();

    /// <summary>How long librdkafka keeps retrying one record before reporting failure (default 30 s).</summary>
    public TimeSpan DeliveryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often librdkafka reports broker states (default 1 s).</summary>
    public TimeSpan StatisticsInterval { get; set; } = TimeSpan.FromSeconds(1);

    public ProduceResilienceOptions Resilience { get; set; } = new();

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        BuildClientSettings(problems);
        if (string.IsNullOrWhiteSpace(BootstrapServers)) problems.Add("BootstrapServers is required (e.g. broker-1:9092)");
        if (DeliveryTimeout < TimeSpan.FromSeconds(1)) problems.Add($"DeliveryTimeout must be at least 1 s (got {DeliveryTimeout})");
        if (StatisticsInterval < TimeSpan.FromMilliseconds(100)) problems.Add($"StatisticsInterval must be at least 100 ms (got {StatisticsInterval})");
        if (Resilience is null) problems.Add("Resilience is required");
        else Resilience.AddProblems(problems, "Resilience.");
        return problems;
    }

    /// <summary>The complete librdkafka configuration (may hold secrets: redact before logging).</summary>
    public IReadOnlyDictionary<string, string> BuildClientSettings()
    {
        var problems = new List<string>();
        var settings = BuildClientSettings(problems);
        if (problems.Count > 0) throw new ArgumentException("invalid Kafka sink options: " + string.Join("; ", problems));
        return settings;
    }

    private Dictionary<string, string> BuildClientSettings(List<string> problems)
    {
        var given = new Dictionary<string, string>(Settings, StringComparer.Ordinal);
        if (given.Remove("bootstrap.servers")) problems.Add("Kafka setting bootstrap.servers must be given as BootstrapServers, not in Settings");
        var defaults = new Dictionary<string, string>
        {
            ["linger.ms"] = "5",
            ["partitioner"] = "murmur2_random",
            ["message.timeout.ms"] = ((long)DeliveryTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            ["statistics.interval.ms"] = ((long)StatisticsInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            ["client.id"] = "prefonline-sink",
        };
        var fixedSettings = new Dictionary<string, (string, string)>
        {
            ["enable.idempotence"] = ("true", "retries must never duplicate or reorder records"),
            ["acks"] = ("all", "a record counts as delivered only when every in-sync replica has it"),
            ["bootstrap.servers"] = (BootstrapServers, "from BootstrapServers"),
        };
        return KafkaSettings.Merge(given, defaults, fixedSettings, problems);
    }
}
