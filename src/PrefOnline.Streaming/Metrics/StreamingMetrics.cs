using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Metrics;

/// <summary>
/// Owner of the streaming instruments (DESIGN.md metric list), on the Meter <see cref="MeterName"/>:
/// <list type="bullet">
/// <item><c>prefonline_messages_total{topic, result}</c> (counter): every consumed record once, with
/// <c>result</c> = <c>ok</c> or its dead-letter reason code (<see cref="Validation.ReasonCodes"/>).</item>
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
    public const string ConsumerLag = "prefonline_consumer_lag";

    /// <summary>The <c>result</c> tag of a record that passed validation.</summary>
    public const string ResultOk = "ok";

    private readonly Counter<long> messages;
    private readonly ConcurrentDictionary<(string Topic, string Result), long> tally = new();
    private readonly ConcurrentDictionary<long, IRecordSource> lagSources = new();
    private readonly bool ownsMeter;
    private long nextRegistration;

    /// <param name="meterFactory">The host's factory (dependency injection); null creates a private Meter owned by this instance.</param>
    public StreamingMetrics(IMeterFactory? meterFactory = null)
    {
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        ownsMeter = meterFactory is null;
        messages = Meter.CreateCounter<long>(MessagesTotal, unit: "{record}", description: "Consumed records by topic and result (ok or dead-letter reason).");
        Meter.CreateObservableGauge(ConsumerLag, ObserveLag, unit: "{record}", description: "Records on the broker not yet delivered to the worker, per partition.");
    }

    public Meter Meter { get; }

    /// <summary>Counts one consumed record of <paramref name="topic"/> with <paramref name="result"/> (ok or a reason code).</summary>
    public void CountMessage(string topic, string result)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(result);
        messages.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("result", result));
        tally.AddOrUpdate((topic, result), 1, static (_, n) => n + 1);
    }

    /// <summary>How many records of <paramref name="topic"/> were counted with <paramref name="result"/> so far.</summary>
    public long MessageCount(string topic, string result) => tally.TryGetValue((topic, result), out var n) ? n : 0;

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
