using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Numerics;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Aggregates every <see cref="System.Diagnostics.Metrics"/> instrument on the PrefOnline meter (in
/// any assembly) with a <see cref="MeterListener"/>, and hands out consistent snapshots for the
/// Prometheus text writer. It replaces prometheus-net, which is absent here.
///
/// Instrument → Prometheus type: Counter and ObservableCounter → counter (sum; observed totals);
/// Gauge, ObservableGauge, UpDownCounter, ObservableUpDownCounter → gauge (last value; running sum);
/// Histogram → histogram with buckets from the instrument's <see cref="InstrumentAdvice{T}"/>, else
/// the catalog's table, else Prometheus' default buckets.
///
/// Several instruments with one name (two classes each creating <c>prefonline_messages_total</c> on
/// their own Meter) form one metric: counters and histograms add up per label set, gauges keep the
/// most recent value. An instrument whose type or buckets disagree with the first one of its name is
/// ignored and counted (reason <c>type_conflict</c>). Observable instruments are read at scrape time;
/// their callbacks also run for any other listener (e.g. OpenTelemetry), so they must be cheap and
/// free of side effects. Label policy: <see cref="MetricsAggregatorOptions"/>.
/// </summary>
public sealed class MetricsAggregator : IDisposable
{
    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private const string Rejected = "_rejected";
    private const string Overflow = "_overflow";

    private readonly MetricsAggregatorOptions options;
    private readonly MeterListener listener;
    private readonly ConcurrentDictionary<Instrument, InstrumentState> states = new();
    private readonly ConcurrentDictionary<(string Metric, string Reason), long> rejections = new();
    private readonly object collectGate = new();
    private readonly HashSet<string> defaultAllowed;
    private long registrations;
    private long callbackErrors;
    private bool disposed;

    public MetricsAggregator(MetricsAggregatorOptions? options = null)
    {
        this.options = options ?? new MetricsAggregatorOptions();
        defaultAllowed = new HashSet<string>(this.options.DefaultAllowedLabelNames, StringComparer.Ordinal);
        listener = new MeterListener
        {
            InstrumentPublished = OnInstrumentPublished,
            MeasurementsCompleted = (instrument, _) => states.TryRemove(instrument, out InstrumentState? _),
        };
        listener.SetMeasurementEventCallback<double>(OnMeasurement);
        listener.SetMeasurementEventCallback<float>(OnMeasurement);
        listener.SetMeasurementEventCallback<long>(OnMeasurement);
        listener.SetMeasurementEventCallback<int>(OnMeasurement);
        listener.SetMeasurementEventCallback<short>(OnMeasurement);
        listener.SetMeasurementEventCallback<byte>(OnMeasurement);
        listener.SetMeasurementEventCallback<decimal>(OnMeasurement);
        listener.Start();
    }

    /// <summary>Reads the observable instruments and returns every metric, sorted by name, series sorted by labels.</summary>
    public IReadOnlyList<MetricFamilySnapshot> Collect()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (collectGate)
        {
            var observables = states.Values.Where(s => s.Observable).ToList();
            foreach (var state in observables) state.BeginObservation();
            try
            {
                listener.RecordObservableInstruments();
            }
            catch (Exception)
            {
                // The BCL runs every callback and then rethrows what failed; the values that were
                // observed are kept and the failure is counted instead of failing the scrape.
                Interlocked.Increment(ref callbackErrors);
            }

            var families = new List<MetricFamilySnapshot>();
            foreach (var group in states.Values.Where(s => !s.Conflicted).GroupBy(s => s.Name, StringComparer.Ordinal))
            {
                var members = group.OrderBy(s => s.Order).ToList();
                var family = Merge(members);
                if (family.Series.Count > 0) families.Add(family);
            }
            families.AddRange(SelfMetrics());
            families.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return families;
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        listener.Dispose();
    }

    private void OnInstrumentPublished(Instrument instrument, MeterListener source)
    {
        if (!string.Equals(instrument.Meter.Name, options.MeterName, StringComparison.Ordinal)) return;
        if (options.MeterFilter is { } filter && !filter(instrument.Meter)) return;
        var shape = Classify(instrument);
        if (shape is null) return;
        var (kind, observable, accumulate) = shape.Value;

        var name = SanitizeMetricName(instrument.Name);
        if (kind == MetricKind.Counter && !name.EndsWith("_total", StringComparison.Ordinal)) name += "_total";
        var definition = MetricCatalog.Find(name);
        var allowed = definition is null ? defaultAllowed : new HashSet<string>(definition.LabelNames, StringComparer.Ordinal);
        double[]? bounds = null;
        if (kind == MetricKind.Histogram)
        {
            bounds = (AdviceBounds(instrument) ?? definition?.Buckets ?? DefaultBuckets)
                .Where(double.IsFinite).Distinct().Order().ToArray();
        }

        var state = new InstrumentState(instrument, name, kind, observable, accumulate, definition, allowed, bounds, Interlocked.Increment(ref registrations));
        // An instrument of the same name must agree on type (and buckets), or it is ignored.
        var first = states.Values.Where(s => s.Name == name && !s.Conflicted).OrderBy(s => s.Order).FirstOrDefault();
        if (first is not null && (first.Kind != kind || (bounds is not null && !bounds.SequenceEqual(first.Bounds!))))
        {
            state.Conflicted = true;
            Reject(name, "type_conflict");
        }
        states[instrument] = state;
        if (!state.Conflicted) source.EnableMeasurementEvents(instrument, state);
    }

    private void OnMeasurement<T>(Instrument instrument, T measurement, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? cookie)
        where T : struct, INumberBase<T>
    {
        if (cookie is not InstrumentState state) return;
        var value = double.CreateSaturating(measurement);
        var valid = state.Kind switch
        {
            MetricKind.Counter => double.IsFinite(value) && value >= 0, // counters never go down
            MetricKind.Histogram => double.IsFinite(value),
            _ => !double.IsNaN(value),
        };
        if (!valid)
        {
            Reject(state.Name, "invalid_value");
            return;
        }
        var series = state.GetSeries(ResolveLabels(state, tags), this);
        series.Record(value, state);
    }

    private LabelKey ResolveLabels(InstrumentState state, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return LabelKey.Empty;
        var pairs = new List<KeyValuePair<string, string>>(tags.Length);
        foreach (var tag in tags)
        {
            var key = SanitizeLabelName(tag.Key);
            if (!state.AllowedLabels.Contains(key) || (state.Kind == MetricKind.Histogram && key == "le"))
            {
                Reject(state.Name, "key_not_allowed");
                continue;
            }
            var value = FormatLabelValue(tag.Value);
            if (value.Length > options.MaxLabelValueLength)
            {
                Reject(state.Name, "value_too_long");
                value = Rejected;
            }
            else if (value.AsSpan().IndexOfAnyInRange('\0', '\u001f') >= 0 || value.Contains('\u007f'))
            {
                Reject(state.Name, "control_character");
                value = Rejected;
            }
            var existing = pairs.FindIndex(p => p.Key == key);
            if (existing >= 0) pairs[existing] = new(key, value);
            else pairs.Add(new(key, value));
        }
        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new LabelKey(pairs);
    }

    private void Reject(string metric, string reason) => rejections.AddOrUpdate((metric, reason), 1, (_, n) => n + 1);

    private MetricFamilySnapshot Merge(List<InstrumentState> members)
    {
        var head = members[0];
        var merged = new Dictionary<LabelKey, MergedSeries>();
        foreach (var state in members)
        {
            foreach (var (key, series) in state.SeriesSnapshot())
            {
                var snapshot = series.Read();
                if (!merged.TryGetValue(key, out var target))
                {
                    merged[key] = new MergedSeries(snapshot.Value, snapshot.Stamp, snapshot.Buckets, snapshot.Sum, snapshot.Count);
                    continue;
                }
                switch (head.Kind)
                {
                    case MetricKind.Counter:
                        target.Value += snapshot.Value;
                        break;
                    case MetricKind.Gauge:
                        if (snapshot.Stamp >= target.Stamp) (target.Value, target.Stamp) = (snapshot.Value, snapshot.Stamp);
                        break;
                    case MetricKind.Histogram:
                        for (var i = 0; i < target.Buckets!.Length; i++) target.Buckets[i] += snapshot.Buckets![i];
                        target.Sum += snapshot.Sum;
                        target.Count += snapshot.Count;
                        break;
                }
            }
        }

        // Counters and histograms the catalog declares start at zero: increase() and rate() need a
        // first sample before the first event, or the first rollback would never show as an increase.
        if (head.Kind != MetricKind.Gauge && head.Definition is { } definition)
        {
            foreach (var labels in KnownLabelSets(definition))
            {
                var key = new LabelKey(labels);
                if (!merged.ContainsKey(key)) merged[key] = new MergedSeries(0, 0, head.Bounds is null ? null : new long[head.Bounds.Length + 1], 0, 0);
            }
        }

        var help = head.Definition?.Help
                   ?? members.Select(m => m.Instrument.Description).FirstOrDefault(d => !string.IsNullOrWhiteSpace(d))
                   ?? $"{head.Instrument.Name} (no description)";
        var seriesList = merged
            .OrderBy(kv => kv.Key)
            .Select(kv => new MetricSeriesSnapshot(kv.Key.Pairs, kv.Value.Value,
                head.Kind == MetricKind.Histogram ? ToHistogram(head.Bounds!, kv.Value) : null))
            .ToList();
        return new MetricFamilySnapshot(head.Name, head.Kind, help, seriesList);
    }

    private static HistogramSnapshot ToHistogram(double[] bounds, MergedSeries series)
    {
        var cumulative = new long[bounds.Length];
        long running = 0;
        for (var i = 0; i < bounds.Length; i++)
        {
            running += series.Buckets![i];
            cumulative[i] = running;
        }
        return new HistogramSnapshot(bounds, cumulative, series.Sum, series.Count);
    }

    /// <summary>Unlabelled catalog metrics get one empty label set; labelled ones every combination of their known values (none if any label is open-ended).</summary>
    private static IEnumerable<List<KeyValuePair<string, string>>> KnownLabelSets(MetricDefinition definition)
    {
        IEnumerable<List<KeyValuePair<string, string>>> sets = [[]];
        foreach (var label in definition.LabelNames.Order(StringComparer.Ordinal))
        {
            if (!definition.KnownLabelValues.TryGetValue(label, out var values) || values.Count == 0) return [];
            sets = sets.SelectMany(set => values.Select(v => new List<KeyValuePair<string, string>>(set) { new(label, v) })).ToList();
        }
        return sets;
    }

    private IEnumerable<MetricFamilySnapshot> SelfMetrics()
    {
        var rejected = rejections.ToArray();
        if (rejected.Length > 0)
        {
            yield return new MetricFamilySnapshot(
                MetricCatalog.LabelRejectionsTotal.Name, MetricKind.Counter, MetricCatalog.LabelRejectionsTotal.Help,
                rejected.OrderBy(r => r.Key.Metric, StringComparer.Ordinal).ThenBy(r => r.Key.Reason, StringComparer.Ordinal)
                    .Select(r => new MetricSeriesSnapshot([new("metric", r.Key.Metric), new("reason", r.Key.Reason)], r.Value))
                    .ToList());
        }
        var errors = Interlocked.Read(ref callbackErrors);
        if (errors > 0)
            yield return new MetricFamilySnapshot(MetricCatalog.CallbackErrorsTotal.Name, MetricKind.Counter, MetricCatalog.CallbackErrorsTotal.Help, [new MetricSeriesSnapshot([], errors)]);
    }

    private static (MetricKind Kind, bool Observable, bool Accumulate)? Classify(Instrument instrument)
    {
        var type = instrument.GetType();
        if (!type.IsGenericType) return null;
        var open = type.GetGenericTypeDefinition();
        if (open == typeof(Counter<>)) return (MetricKind.Counter, false, true);
        if (open == typeof(ObservableCounter<>)) return (MetricKind.Counter, true, false);
        if (open == typeof(UpDownCounter<>)) return (MetricKind.Gauge, false, true);
        if (open == typeof(ObservableUpDownCounter<>)) return (MetricKind.Gauge, true, false);
        if (open == typeof(Gauge<>)) return (MetricKind.Gauge, false, false);
        if (open == typeof(ObservableGauge<>)) return (MetricKind.Gauge, true, false);
        if (open == typeof(Histogram<>)) return (MetricKind.Histogram, false, true);
        return null;
    }

    private static IEnumerable<double>? AdviceBounds(Instrument instrument) => instrument switch
    {
        Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
        Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        Histogram<short> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        Histogram<byte> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        Histogram<decimal> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
        _ => null,
    };

    /// <summary>A valid Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*; anything else becomes '_'.</summary>
    public static string SanitizeMetricName(string name) => Sanitize(name, allowColon: true);

    /// <summary>A valid Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, never starting with the reserved "__".</summary>
    public static string SanitizeLabelName(string name)
    {
        var sanitized = Sanitize(name, allowColon: false);
        return sanitized.StartsWith("__", StringComparison.Ordinal) ? "x" + sanitized : sanitized;
    }

    private static string Sanitize(string name, bool allowColon)
    {
        if (string.IsNullOrEmpty(name)) return "_";
        return string.Create(name.Length + (char.IsAsciiDigit(name[0]) ? 1 : 0), (name, allowColon), static (span, s) =>
        {
            var offset = 0;
            if (char.IsAsciiDigit(s.name[0])) span[offset++] = '_';
            foreach (var c in s.name)
                span[offset++] = char.IsAsciiLetterOrDigit(c) || c == '_' || (s.allowColon && c == ':') ? c : '_';
        });
    }

    private static string FormatLabelValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        Enum e => e.ToString().ToLowerInvariant(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A sorted label set with value equality; the key of a series.</summary>
    private sealed class LabelKey : IEquatable<LabelKey>, IComparable<LabelKey>
    {
        public static readonly LabelKey Empty = new([]);
        private readonly int hash;

        public LabelKey(List<KeyValuePair<string, string>> pairs)
        {
            Pairs = pairs;
            var h = new HashCode();
            foreach (var (k, v) in pairs)
            {
                h.Add(k, StringComparer.Ordinal);
                h.Add(v, StringComparer.Ordinal);
            }
            hash = h.ToHashCode();
        }

        public IReadOnlyList<KeyValuePair<string, string>> Pairs { get; }

        public LabelKey AsOverflow() => new(Pairs.Select(p => new KeyValuePair<string, string>(p.Key, Overflow)).ToList());

        public bool Equals(LabelKey? other)
        {
            if (other is null || other.hash != hash || other.Pairs.Count != Pairs.Count) return false;
            for (var i = 0; i < Pairs.Count; i++)
            {
                if (!string.Equals(Pairs[i].Key, other.Pairs[i].Key, StringComparison.Ordinal)
                    || !string.Equals(Pairs[i].Value, other.Pairs[i].Value, StringComparison.Ordinal)) return false;
            }
            return true;
        }

        public override bool Equals(object? obj) => Equals(obj as LabelKey);

        public override int GetHashCode() => hash;

        public int CompareTo(LabelKey? other)
        {
            if (other is null) return 1;
            for (var i = 0; i < Math.Min(Pairs.Count, other.Pairs.Count); i++)
            {
                var c = string.CompareOrdinal(Pairs[i].Key, other.Pairs[i].Key);
                if (c != 0) return c;
                c = string.CompareOrdinal(Pairs[i].Value, other.Pairs[i].Value);
                if (c != 0) return c;
            }
            return Pairs.Count.CompareTo(other.Pairs.Count);
        }
    }

    private sealed class InstrumentState(
        Instrument instrument, string name, MetricKind kind, bool observable, bool accumulate,
        MetricDefinition? definition, HashSet<string> allowedLabels, double[]? bounds, long order)
    {
        private ConcurrentDictionary<LabelKey, Series> series = new();

        public Instrument Instrument { get; } = instrument;
        public string Name { get; } = name;
        public MetricKind Kind { get; } = kind;
        public bool Observable { get; } = observable;
        /// <summary>True when measurements add up (Counter, UpDownCounter, Histogram); false when each one replaces the value.</summary>
        public bool Accumulate { get; } = accumulate;
        public MetricDefinition? Definition { get; } = definition;
        public HashSet<string> AllowedLabels { get; } = allowedLabels;
        public double[]? Bounds { get; } = bounds;
        public long Order { get; } = order;
        public bool Conflicted { get; set; }

        /// <summary>Observable instruments report their full current set on every scrape; series not reported again disappear.</summary>
        public void BeginObservation() => series = new ConcurrentDictionary<LabelKey, Series>();

        public IEnumerable<KeyValuePair<LabelKey, Series>> SeriesSnapshot() => series;

        public Series GetSeries(LabelKey key, MetricsAggregator owner)
        {
            var map = series;
            if (map.TryGetValue(key, out var existing)) return existing;
            if (map.Count >= owner.options.MaxSeriesPerMetric)
            {
                owner.Reject(Name, "series_limit");
                key = key.AsOverflow();
            }
            return map.GetOrAdd(key, _ => new Series(Bounds));
        }
    }

    private sealed class Series(double[]? bounds)
    {
        private readonly object gate = new();
        private readonly long[]? buckets = bounds is null ? null : new long[bounds.Length + 1];
        private double value;
        private double sum;
        private long count;
        private long stamp;

        public void Record(double measurement, InstrumentState state)
        {
            lock (gate)
            {
                stamp = Stopwatch.GetTimestamp();
                if (buckets is not null)
                {
                    // le is inclusive: a value equal to a bound belongs to that bound's bucket.
                    var index = Array.BinarySearch(state.Bounds!, measurement);
                    if (index < 0) index = ~index;
                    buckets[index]++;
                    sum += measurement;
                    count++;
                }
                else if (state.Accumulate)
                {
                    value += measurement;
                }
                else
                {
                    value = measurement;
                }
            }
        }

        public (double Value, long Stamp, long[]? Buckets, double Sum, long Count) Read()
        {
            lock (gate) return (value, stamp, buckets?.ToArray(), sum, count);
        }
    }

    private sealed class MergedSeries(double value, long stamp, long[]? buckets, double sum, long count)
    {
        public double Value = value;
        public long Stamp = stamp;
        public long[]? Buckets = buckets;
        public double Sum = sum;
        public long Count = count;
    }
}
