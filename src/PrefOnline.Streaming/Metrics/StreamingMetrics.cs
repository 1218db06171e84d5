using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Metrics;

/// <summary>
/// Owner of the streaming instruments (docs/OPERATIONS.md, "Metrics"), on the Meter <see cref="MeterName"/>:
/// <list type="bullet">
/// <item><c>prefonline_messages_total{topic, result}</c> (counter): every consumed record once, with
/// <c>result</c> = <c>ok</c> (passed validation) or <c>dead_letter</c> (routed to the DLQ; the value the
/// alert rules and dashboard query, see the Worker's MetricCatalog).</item>
/// <item><c>prefonline_dead_letters_total{topic, reason}</c> (counter): the dead letters again, by stable
/// reason code (<see cref="Validation.ReasonCodes"/>), so operators see WHY records are refused.</item>
/// <item><c>prefonline_skipped_records_total{topic, reason}</c> (counter): records refused and skipped without a
/// dead letter (counted <c>result</c> = <c>skipped</c> above): the policy topic's, which every generator reads
/// from its start, so the record stays readable where it is (see <see cref="Intake.ValidatingIntake.SkippingRefused"/>);
/// also valid policy events a generator refused afterwards (<see cref="CountSkippedAfterAcceptance"/>).</item>
/// <item><c>prefonline_consumer_lag{topic, partition}</c> (observable gauge, records): per assigned
/// partition of every tracked source, high watermark − next offset to deliver.</item>
/// </list>
/// Create one per process (the host's) and pass it to sources, intakes and dead-letter routers. An
/// in-process tally of the counter is kept too, for consoles and tests, without a listener.
/// </summary>
public sealed class StreamingMetrics : IDisposable
{
    public const string MeterName = "PrefOnline";
    public const string MessagesTotal = "prefonline_messages_total";
    public const string DeadLettersTotal = "prefonline_dead_letters_total";
    public const string ConsumerLag = "prefonline_consumer_lag";
    public const string SkippedRecordsTotal = "prefonline_skipped_records_total";

    /// <summary>The <c>result</c> tag of a record that passed validation.</summary>
    public const string ResultOk = "ok";

    /// <summary>The <c>result</c> tag of a record routed to the dead-letter topic.</summary>
    public const string ResultDeadLetter = "dead_letter";

    /// <summary>The <c>result</c> tag of a refused record that was skipped without a dead letter (policy topic).</summary>
    public const string ResultSkipped = "skipped";

    private readonly Counter<long> messages;
    private readonly Counter<long> deadLetters;
    private readonly Counter<long> skipped;
    private readonly ConcurrentDictionary<(string Topic, string Reason), long> deadLetterTally = new();
    private readonly ConcurrentDictionary<(string Topic, string Reason), long> skippedTally = new();
    private readonly ConcurrentDictionary<(string Topic, string Result), long> tally = new();
    private readonly ConcurrentDictionary<long, IRecordSource> lagSources = new();
    private readonly bool ownsMeter;
    private long nextRegistration;

    /// <param name="meterFactory">The host's factory (dependency injection); null creates a private Meter owned by this instance.</param>
    public StreamingMetrics(IMeterFactory? meterFactory = null)
    {
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        ownsMeter = meterFactory is null;
        messages = Meter.CreateCounter<long>(MessagesTotal, unit: "{record}", description: "Consumed records by topic and result (ok, dead_letter or skipped).");
        deadLetters = Meter.CreateCounter<long>(DeadLettersTotal, unit: "{record}", description: "Records routed to the dead-letter topic, by source topic and reason code.");
        skipped = Meter.CreateCounter<long>(SkippedRecordsTotal, unit: "{record}", description: "Refused records skipped without a dead letter (policy topic), by topic and reason code.");
        Meter.CreateObservableGauge(ConsumerLag, ObserveLag, unit: "{record}", description: "Records on the broker not yet delivered to the worker, per partition.");
    }

    public Meter Meter { get; }

    /// <summary>Counts one record of <paramref name="topic"/> that passed validation.</summary>
    public void CountAccepted(string topic) => Count(topic, ResultOk);

    /// <summary>Counts one record of <paramref name="topic"/> routed to the dead-letter topic for <paramref name="reason"/> (a <see cref="Validation.ReasonCodes"/> value).</summary>
    public void CountDeadLetter(string topic, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Count(topic, ResultDeadLetter);
        deadLetters.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("reason", reason));
        deadLetterTally.AddOrUpdate((topic, reason), 1, static (_, n) => n + 1);
    }

    /// <summary>Counts one refused record of <paramref name="topic"/> skipped without a dead letter, for <paramref name="reason"/> (a <see cref="Validation.ReasonCodes"/> value).</summary>
    public void CountSkipped(string topic, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Count(topic, ResultSkipped);
        skipped.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("reason", reason));
        skippedTally.AddOrUpdate((topic, reason), 1, static (_, n) => n + 1);
    }

    /// <summary>
    /// Counts one record of <paramref name="topic"/> that passed validation (counted <c>ok</c> then) but was refused by its
    /// consumer afterwards and skipped — a policy event whose files a generator cannot verify — in
    /// <c>prefonline_skipped_records_total</c> only (<c>messages_total</c> already counted the record).
    /// </summary>
    public void CountSkippedAfterAcceptance(string topic, string reason)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(reason);
        skipped.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("reason", reason));
        skippedTally.AddOrUpdate((topic, reason), 1, static (_, n) => n + 1);
    }

    /// <summary>How many refused records of <paramref name="topic"/> were skipped for <paramref name="reason"/> so far.</summary>
    public long SkippedCount(string topic, string reason) => skippedTally.TryGetValue((topic, reason), out var n) ? n : 0;

    /// <summary>How many records of <paramref name="topic"/> were counted with <paramref name="result"/> (ok, dead_letter or skipped) so far.</summary>
    public long MessageCount(string topic, string result) => tally.TryGetValue((topic, result), out var n) ? n : 0;

    /// <summary>How many records of <paramref name="topic"/> were dead-lettered for <paramref name="reason"/> so far.</summary>
    public long DeadLetterCount(string topic, string reason) => deadLetterTally.TryGetValue((topic, reason), out var n) ? n : 0;

    /// <summary>A snapshot of every (topic, reason) dead-letter count.</summary>
    public IReadOnlyDictionary<(string Topic, string Reason), long> DeadLetterCounts() => new Dictionary<(string, string), long>(deadLetterTally);

    /// <summary>A snapshot of every (topic, result) count.</summary>
    public IReadOnlyDictionary<(string Topic, string Result), long> MessageCounts() => new Dictionary<(string, string), long>(tally);

    /// <summary>Reports the source's per-partition lag on <c>prefonline_consumer_lag</c> until the returned handle is disposed.</summary>
    public IDisposable TrackLag(IRecordSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var id = Interlocked.Increment(ref nextRegistration);
        lagSources[id] = source;
        return new Registration(() => lagSources.TryRemove(id, out _));
    }

    public void Dispose()
    {
        lagSources.Clear();
        if (ownsMeter) Meter.Dispose();
    }

    private void Count(string topic, string result)
    {
        ArgumentNullException.ThrowIfNull(topic);
        messages.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("result", result));
        tally.AddOrUpdate((topic, result), 1, static (_, n) => n + 1);
    }

    private IEnumerable<Measurement<long>> ObserveLag()
    {
        foreach (var source in lagSources.Values)
        {
            foreach (var lag in source.GetLag())
            {
                if (lag.Lag is not { } value) continue;
                yield return new Measurement<long>(value,
                    new KeyValuePair<string, object?>("topic", lag.Partition.Topic),
                    new KeyValuePair<string, object?>("partition", lag.Partition.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
    }

    private sealed class Registration(Action release) : IDisposable
    {
        private Action? release = release;

        public void Dispose() => Interlocked.Exchange(ref release, null)?.Invoke();
    }
}
