namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// Configuration of one consumer-group source (bind from configuration, check <see cref="Problems"/> at start-up).
/// </summary>
public sealed class KafkaSourceOptions
{
    /// <summary><c>bootstrap.servers</c>: comma-separated host:port list.</summary>
    public string BootstrapServers { get; set; } = "";

    /// <summary><c>group.id</c>: members of one group split the topics' partitions.</summary>
    public string GroupId { get; set; } = "prefonline";

    /// <summary>Topics to subscribe to.</summary>
    public IList<string> Topics { get; set; } = new List<string>();

    /// <summary>
    /// Any librdkafka consumer property, passed through unchanged (security.protocol, sasl.*, ssl.*,
    /// session.timeout.ms, fetch.*...). Secrets are never logged. <c>enable.auto.commit</c> and
    /// <c>enable.auto.offset.store</c> are fixed to false and may not be set otherwise.
    /// Default when absent: <c>auto.offset.reset=earliest</c> (a new group reads everything, losing nothing).
    /// </summary>
    public IDictionary<string, string> Settings { get; set; } = new Dictionary<string, string>();

    /// <summary>
    /// Records buffered between the consume loop and the caller (default 1,024). When the caller falls
    /// behind, up to max(256, ChannelCapacity) more records wait in order in the loop's backlog; then the
    /// loop stops taking records and librdkafka stops fetching once its prefetch queue is full
    /// (queued.max.messages.kbytes: librdkafka's default 64 MiB; set it in Settings to bound memory
    /// tighter). After <see cref="StallPauseAfter"/> of such a stall the partitions are paused, so the loop
    /// can keep polling and the member stays in the group. Memory bound: the channel, the backlog (plus
    /// one burst of 256) and the prefetch queue.
    /// </summary>
    public int ChannelCapacity { get; set; } = 1024;

    /// <summary>
    /// How long the caller may stall the source before its partitions are paused (default 30 s). Must stay
    /// well below librdkafka's max.poll.interval.ms (default 300 s), after which the member would be
    /// evicted from the group for not polling. Pausing purges librdkafka's prefetched records, which are
    /// fetched again on resume, so short stalls are better ridden out without it.
    /// </summary>
    public TimeSpan StallPauseAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest a single poll blocks; bounds how fast the loop notices shutdown (default 100 ms).</summary>
    public TimeSpan PollTimeout { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often librdkafka reports broker states (drives <see cref="Transport.BrokerReachability"/>; default 1 s).</summary>
    public TimeSpan StatisticsInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest <see cref="Transport.IRecordSource.GetCommittedAsync"/> waits for the broker (default 10 s).</summary>
    public TimeSpan CommittedQueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest a close waits to leave the group before the client is destroyed anyway (default 10 s).</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>One line per invalid setting; empty when usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        BuildClientSettings(problems);
        if (string.IsNullOrWhiteSpace(BootstrapServers)) problems.Add("BootstrapServers is required (e.g. broker-1:9092)");
        if (string.IsNullOrWhiteSpace(GroupId)) problems.Add("GroupId is required");
        if (Topics.Count == 0 || Topics.Any(string.IsNullOrWhiteSpace)) problems.Add("Topics must list at least one non-empty topic name");
        if (ChannelCapacity < 1) problems.Add($"ChannelCapacity must be at least 1 (got {ChannelCapacity})");
        if (PollTimeout <= TimeSpan.Zero || PollTimeout > TimeSpan.FromSeconds(10)) problems.Add($"PollTimeout must be in (0, 10 s] (got {PollTimeout})");
        if (StatisticsInterval < TimeSpan.FromMilliseconds(100)) problems.Add($"StatisticsInterval must be at least 100 ms (got {StatisticsInterval})");
        if (CommittedQueryTimeout <= TimeSpan.Zero) problems.Add("CommittedQueryTimeout must be positive");
        if (CloseTimeout <= TimeSpan.Zero) problems.Add("CloseTimeout must be positive");
        if (StallPauseAfter <= TimeSpan.Zero || StallPauseAfter > TimeSpan.FromMinutes(2)) problems.Add($"StallPauseAfter must be in (0, 2 min] (got {StallPauseAfter})");
        return problems;
    }

    /// <summary>The complete librdkafka configuration this source uses (may hold secrets: redact before logging).</summary>
    public IReadOnlyDictionary<string, string> BuildClientSettings()
    {
        var problems = new List<string>();
        var settings = BuildClientSettings(problems);
        if (problems.Count > 0) throw new ArgumentException("invalid Kafka source options: " + string.Join("; ", problems));
        return settings;
    }

    private Dictionary<string, string> BuildClientSettings(List<string> problems)
    {
        var given = new Dictionary<string, string>(Settings, StringComparer.Ordinal);
        foreach (var reserved in new[] { "bootstrap.servers", "group.id" })
        {
            if (given.Remove(reserved)) problems.Add($"Kafka setting {reserved} must be given as {(reserved == "group.id" ? "GroupId" : "BootstrapServers")}, not in Settings");
        }
        var defaults = new Dictionary<string, string>
        {
            ["auto.offset.reset"] = "earliest",
            ["statistics.interval.ms"] = ((int)StatisticsInterval.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["client.id"] = "prefonline-source",
        };
        var fixedSettings = new Dictionary<string, (string, string)>
        {
            ["enable.auto.commit"] = ("false", "offsets are committed only after the checkpoint that absorbed them is durable"),
            ["enable.auto.offset.store"] = ("false", "offsets are committed explicitly, never stored behind the caller's back"),
            ["bootstrap.servers"] = (BootstrapServers, "from BootstrapServers"),
            ["group.id"] = (GroupId, "from GroupId"),
        };
        return KafkaSettings.Merge(given, defaults, fixedSettings, problems);
    }
}
