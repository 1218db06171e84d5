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
    /// (queued.max.messages.kbytes, derived from <see cref="MaxRecordBytes"/>). The channel and the backlog
    /// together also hold at most <see cref="EffectiveMaxBufferedBytes"/> (plus one record), whatever the count.
    /// After <see cref="StallPauseAfter"/> of such a stall the partitions are paused, so the loop can keep
    /// polling and the member stays in the group. Memory bound: <see cref="Memory"/>.
    /// </summary>
    public int ChannelCapacity { get; set; } = 1024;

    /// <summary>
    /// Largest record (value, key and headers together) read into memory, in bytes (default 256 KiB, the worker passes
    /// <c>Validation:MaxRecordBytes</c>). A larger record is handed over without its content
    /// (<see cref="Transport.ConsumedRecord.ContentOmitted"/>): its value is never copied out of librdkafka. The fetch and
    /// queue limits librdkafka gets by default are derived from it (<see cref="DerivedClientSettings"/>).
    /// </summary>
    public int MaxRecordBytes { get; set; } = 256 * 1024;

    /// <summary>
    /// Bytes of records the channel and the backlog hold together (an upper bound besides <see cref="ChannelCapacity"/>);
    /// 0 (default) = 16 × <see cref="MaxRecordBytes"/>, at least 1 MiB.
    /// </summary>
    public long MaxBufferedBytes { get; set; }

    /// <summary>Bytes a buffered record costs beyond its <see cref="Transport.ConsumedRecord.Size"/>: the objects around it (record, arrays, header list), rounded up.</summary>
    public const int RecordOverheadBytes = 256;

    /// <summary><see cref="MaxBufferedBytes"/>, or its derived default.</summary>
    public long EffectiveMaxBufferedBytes => MaxBufferedBytes > 0 ? MaxBufferedBytes : Math.Max(1L << 20, 16L * MaxRecordBytes);

    /// <summary>
    /// librdkafka's fetch and queue limits derived from <see cref="MaxRecordBytes"/> (L), used unless <see cref="Settings"/>
    /// names them: <c>max.partition.fetch.bytes</c> = L (a partition's share of one fetch; a larger first batch is still
    /// returned, so progress never stops); <c>fetch.max.bytes</c> F = max(4 L, 1 MiB) (one fetch response; librdkafka raises
    /// it to at least <c>message.max.bytes</c>, 1,000,000); <c>queued.max.messages.kbytes</c> = 2 F (the prefetch queue;
    /// librdkafka's own default is 64 MiB); <c>receive.message.max.bytes</c> = 2 F + 512 (the largest response accepted:
    /// room for a first batch up to 2 F, i.e. topics' <c>max.message.bytes</c> up to 2 MiB at the defaults).
    /// </summary>
    /// <remarks>A <c>fetch.max.bytes</c> given in <see cref="Settings"/> takes the place of F in the other two, so an explicit
    /// value never meets a derived <c>receive.message.max.bytes</c> below F + 512 (which librdkafka refuses).</remarks>
    public IReadOnlyDictionary<string, string> DerivedClientSettings()
    {
        var record = Math.Max(1024L, MaxRecordBytes);
        var fetch = Settings.TryGetValue("fetch.max.bytes", out var given) && long.TryParse(given, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var explicitFetch) && explicitFetch > 0
            ? explicitFetch
            : Math.Max(4 * record, 1L << 20);
        return new Dictionary<string, string>
        {
            ["max.partition.fetch.bytes"] = Text(record),
            ["fetch.max.bytes"] = Text(fetch),
            ["queued.max.messages.kbytes"] = Text(Math.Clamp(2 * fetch / 1024, 1, 2_097_151)),
            ["receive.message.max.bytes"] = Text(Math.Min(2 * fetch + 512, int.MaxValue)),
        };

        static string Text(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The most memory this source can hold, from its effective settings (see <see cref="KafkaSourceMemory"/>).</summary>
    public KafkaSourceMemory Memory()
    {
        var settings = BuildClientSettings();
        long Setting(string name, long fallback) =>
            settings.TryGetValue(name, out var text) && long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : fallback;
        var fetch = Math.Max(Setting("fetch.max.bytes", 52_428_800), Setting("message.max.bytes", 1_000_000));
        return new KafkaSourceMemory(
            BufferedBytes: EffectiveMaxBufferedBytes,
            BufferedRecords: ChannelCapacity + KafkaRecordSource.BacklogCapacityFor(ChannelCapacity) + KafkaRecordSource.BurstSize,
            MaxRecordBytes: MaxRecordBytes,
            QueuedBytes: Setting("queued.max.messages.kbytes", 65_536) * 1024,
            FetchBytes: fetch,
            ResponseBytes: Setting("receive.message.max.bytes", 100_000_000));
    }

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
        if (MaxRecordBytes < 1) problems.Add($"MaxRecordBytes must be at least 1 (got {MaxRecordBytes})");
        if (MaxBufferedBytes < 0) problems.Add($"MaxBufferedBytes must be 0 (derived) or positive (got {MaxBufferedBytes})");
        else if (MaxBufferedBytes > 0 && MaxBufferedBytes < MaxRecordBytes) problems.Add($"MaxBufferedBytes ({MaxBufferedBytes}) must hold at least one record of MaxRecordBytes ({MaxRecordBytes})");
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
        var defaults = new Dictionary<string, string>(DerivedClientSettings())
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
