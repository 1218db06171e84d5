using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Numerics;
using System.Text;
using Prometheus;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Exports every <see cref="System.Diagnostics.Metrics"/> instrument on the PrefOnline meter (in any assembly) through
/// prometheus-net: one prometheus-net collector per metric of <see cref="MetricCatalog"/>, declared with the catalog's
/// name, HELP, label names and buckets in a private <see cref="CollectorRegistry"/> (no process or runtime metrics of
/// prometheus-net's default registry). prometheus-net keeps the values and writes the text exposition; this class feeds
/// it from a <see cref="MeterListener"/> and applies the label policy (<see cref="PrometheusExporterOptions"/>).
///
/// WHY not prometheus-net's own meter adapter (<c>MeterAdapter</c>): it names a metric
/// <c>{meter}_{instrument}</c> (<c>prefonline_prefonline_updates_total</c>), exports counters as gauges, appends the unit
/// and the instrument type to HELP, ignores synchronous <c>Gauge&lt;T&gt;</c> and expires idle series: the metric names,
/// types and HELP texts the alert rules and dashboards rely on would all change (docs/OPERATIONS.md, "Metrics").
///
/// Instrument → Prometheus type: Counter and ObservableCounter → counter (a name without <c>_total</c> gets it);
/// Gauge, ObservableGauge, UpDownCounter, ObservableUpDownCounter → gauge; Histogram → histogram with buckets from the
/// instrument's <see cref="InstrumentAdvice{T}"/>, else the catalog's, else Prometheus' defaults. Several instruments
/// of one name (two components each creating <c>prefonline_messages_total</c> on their own Meter) feed one metric:
/// counters and histograms add up, gauges keep the latest value. An instrument whose type or buckets disagree with the
/// first of its name is ignored and counted (reason <c>type_conflict</c>). Observable instruments are read at each
/// scrape; a series they no longer report disappears. A metric whose last instrument is disposed loses its samples.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The Content-Type of a Prometheus text 0.0.4 scrape response.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Prometheus' default buckets, for a histogram neither its advice nor the catalog gives buckets.</summary>
    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private const string Rejected = "_rejected";
    private const string Overflow = "_overflow";

    private readonly PrometheusExporterOptions options;
    private readonly HashSet<string> defaultAllowed;
    private readonly MeterListener listener;
    private readonly CollectorRegistry registry = Metrics.NewCustomRegistry();
    private readonly IMetricFactory factory;
    private readonly Lock gate = new();        // families, their label names and collectors, the self-metrics
    private readonly Lock scrapeGate = new();  // one observation pass at a time
    private readonly Dictionary<string, Family> families = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Instrument, Binding> bindings = new();
    private Counter? rejections;
    private Counter? callbackErrors;
    private volatile bool disposed;

    public PrometheusExporter(PrometheusExporterOptions? options = null)
    {
        this.options = options ?? new PrometheusExporterOptions();
        defaultAllowed = new HashSet<string>(this.options.DefaultAllowedLabelNames, StringComparer.Ordinal);
        factory = Metrics.WithCustomRegistry(registry);
        registry.AddBeforeCollectCallback(ObserveInstruments);
        listener = new MeterListener { InstrumentPublished = OnInstrumentPublished, MeasurementsCompleted = OnMeasurementsCompleted };
        listener.SetMeasurementEventCallback<double>(OnMeasurement);
        listener.SetMeasurementEventCallback<float>(OnMeasurement);
        listener.SetMeasurementEventCallback<long>(OnMeasurement);
        listener.SetMeasurementEventCallback<int>(OnMeasurement);
        listener.SetMeasurementEventCallback<short>(OnMeasurement);
        listener.SetMeasurementEventCallback<byte>(OnMeasurement);
        listener.SetMeasurementEventCallback<decimal>(OnMeasurement);
        listener.Start();
    }

    /// <summary>Writes one scrape (Prometheus text 0.0.4) to <paramref name="destination"/>.</summary>
    public Task WriteAsync(Stream destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return registry.CollectAndExportAsTextAsync(destination, ExpositionFormat.PrometheusText, cancellationToken);
    }

    /// <summary>One scrape as text (tests, diagnostics).</summary>
    public async Task<string> ScrapeAsync(CancellationToken cancellationToken = default)
    {
        using var buffer = new MemoryStream();
        await WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
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
        if (Classify(instrument) is not var (kind, observable, accumulate)) return;

        var name = SanitizeMetricName(instrument.Name);
        if (kind == MetricKind.Counter && !name.EndsWith("_total", StringComparison.Ordinal)) name += "_total";
        var definition = MetricCatalog.Find(name);
        var bounds = kind != MetricKind.Histogram ? null
            : (AdviceBounds(instrument) ?? definition?.Buckets ?? DefaultBuckets).Where(double.IsFinite).Distinct().Order().ToArray();

        Family family;
        lock (gate)
        {
            if (families.TryGetValue(name, out var existing))
            {
                // An instrument of the same name must agree on type (and buckets), or it is ignored.
                if (existing.Kind != kind || (bounds is not null && !bounds.SequenceEqual(existing.Bounds!)))
                {
                    RejectLocked(name, "type_conflict");
                    return;
                }
                family = existing;
            }
            else
            {
                var help = definition?.Help
                           ?? (string.IsNullOrWhiteSpace(instrument.Description) ? $"{instrument.Name} (no description)" : instrument.Description);
                family = new Family(name, kind, help, definition, bounds);
                families[name] = family;
                // A catalog metric's label names are known now; another instrument's come with its first measurement.
                if (definition is not null) CreateCollectorLocked(family, definition.LabelNames.Order(StringComparer.Ordinal).ToArray());
            }
            if (family.LiveInstruments++ == 0 && family.Collector is not null) PublishKnownLabelSetsLocked(family);
        }
        var binding = new Binding(family, observable, accumulate);
        bindings[instrument] = binding;
        source.EnableMeasurementEvents(instrument, binding);
    }

    private void OnMeasurementsCompleted(Instrument instrument, object? state)
    {
        if (!bindings.TryRemove(instrument, out var binding)) return;
        var family = binding.Family;
        lock (gate)
        {
            if (--family.LiveInstruments > 0) return;
            // The metric's last instrument is gone (its Meter was disposed): its samples go with it.
            foreach (var values in family.Series.Values) Child(family, values).Remove();
            family.Series.Clear();
            family.ObservedLastScrape.Clear();
        }
    }

    private void OnMeasurement<T>(Instrument instrument, T measurement, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        where T : struct, INumberBase<T>
    {
        if (state is not Binding binding) return;
        var family = binding.Family;
        var value = double.CreateSaturating(measurement);
        var valid = family.Kind switch
        {
            MetricKind.Counter => double.IsFinite(value) && value >= 0, // counters never go down
            MetricKind.Histogram => double.IsFinite(value),
            _ => !double.IsNaN(value),
        };
        if (!valid)
        {
            Reject(family.Name, "invalid_value");
            return;
        }
        var (key, values) = SeriesOf(family, tags);
        if (binding.Observable)
        {
            // Only during ObserveInstruments, on the scraping thread: collected, then applied as a whole.
            if (family.Observed is not { } observed) return; // published after this scrape's pass began: read next time
            observed[key] = (values, family.Kind == MetricKind.Counter && observed.TryGetValue(key, out var earlier) ? earlier.Value + value : value);
            return;
        }
        switch (family.Collector)
        {
            case Counter counter:
                counter.WithLabels(values).Inc(value);
                break;
            case Gauge gauge when binding.Accumulate:
                gauge.WithLabels(values).Inc(value);
                break;
            case Gauge gauge:
                gauge.WithLabels(values).Set(value);
                break;
            case Histogram histogram:
                histogram.WithLabels(values).Observe(value);
                break;
        }
    }

    /// <summary>Runs the observable instruments' callbacks before prometheus-net writes a scrape.</summary>
    private void ObserveInstruments()
    {
        if (disposed) return;
        lock (scrapeGate)
        {
            List<Family> observed;
            lock (gate) observed = bindings.Values.Where(b => b.Observable).Select(b => b.Family).Distinct().ToList();
            foreach (var family in observed) family.Observed = new Dictionary<string, (string[] Values, double Value)>(StringComparer.Ordinal);
            try
            {
                listener.RecordObservableInstruments();
            }
            catch (Exception)
            {
                // The BCL runs every callback and then rethrows what failed; the values that were observed are kept
                // and the failure is counted instead of failing the scrape.
                lock (gate)
                {
                    callbackErrors ??= factory.CreateCounter(MetricCatalog.CallbackErrorsTotal.Name, MetricCatalog.CallbackErrorsTotal.Help);
                    callbackErrors.Inc();
                }
            }
            foreach (var family in observed)
            {
                var current = family.Observed!;
                family.Observed = null;
                lock (gate)
                {
                    foreach (var (_, (values, value)) in current)
                    {
                        if (family.Collector is Counter counter) counter.WithLabels(values).IncTo(value);
                        else if (family.Collector is Gauge gauge) gauge.WithLabels(values).Set(value);
                    }
                    // A series the callbacks no longer report (a partition rebalanced away) disappears.
                    foreach (var gone in family.ObservedLastScrape.Where(k => !current.ContainsKey(k)).ToList())
                    {
                        if (family.Series.Remove(gone, out var values)) Child(family, values).Remove();
                    }
                    family.ObservedLastScrape = current.Keys.ToHashSet(StringComparer.Ordinal);
                }
            }
        }
    }

    /// <summary>The series a measurement's tags name: allow-listed label names only, values checked, the series limit applied.</summary>
    private (string Key, string[] Values) SeriesOf(Family family, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (family.LabelNames is null)
        {
            // An instrument the catalog does not know: its label names are the allow-listed ones its first measurement carries.
            var names = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var tag in tags)
            {
                var key = SanitizeLabelName(tag.Key);
                if (defaultAllowed.Contains(key) && !(family.Kind == MetricKind.Histogram && key == "le")) names.Add(key);
            }
            lock (gate)
            {
                if (family.LabelNames is null) CreateCollectorLocked(family, names.ToArray());
            }
        }
        var labelNames = family.LabelNames!;
        var values = new string[labelNames.Length];
        Array.Fill(values, "");
        foreach (var tag in tags)
        {
            var index = Array.IndexOf(labelNames, SanitizeLabelName(tag.Key));
            if (index < 0)
            {
                Reject(family.Name, "key_not_allowed");
                continue;
            }
            var value = FormatLabelValue(tag.Value);
            if (value.Length > options.MaxLabelValueLength)
            {
                Reject(family.Name, "value_too_long");
                value = Rejected;
            }
            else if (value.AsSpan().IndexOfAnyInRange('\0', '\u001f') >= 0 || value.Contains('\u007f'))
            {
                Reject(family.Name, "control_character");
                value = Rejected;
            }
            values[index] = value;
        }
        var seriesKey = string.Join('\u001f', values);
        lock (gate)
        {
            if (family.Series.ContainsKey(seriesKey)) return (seriesKey, values);
            if (family.Series.Count >= options.MaxSeriesPerMetric)
            {
                RejectLocked(family.Name, "series_limit");
                Array.Fill(values, Overflow);
                seriesKey = string.Join('\u001f', values);
            }
            family.Series.TryAdd(seriesKey, values);
        }
        return (seriesKey, values);
    }

    private void CreateCollectorLocked(Family family, string[] labelNames)
    {
        family.LabelNames = labelNames;
        // SuppressInitialValue: a series appears with its first measurement, never as an invented 0 (a gauge's 0 would
        // read as a real value); PublishKnownLabelSetsLocked starts the catalog's counters and histograms at zero.
        family.Collector = family.Kind switch
        {
            MetricKind.Counter => factory.CreateCounter(family.Name, family.Help, new CounterConfiguration { LabelNames = labelNames, SuppressInitialValue = true }),
            MetricKind.Gauge => factory.CreateGauge(family.Name, family.Help, new GaugeConfiguration { LabelNames = labelNames, SuppressInitialValue = true }),
            _ => factory.CreateHistogram(family.Name, family.Help, new HistogramConfiguration { LabelNames = labelNames, Buckets = family.Bounds, SuppressInitialValue = true }),
        };
    }

    /// <summary>
    /// Counters and histograms the catalog declares start at zero: increase() and rate() need a first sample before the
    /// first event, or the first rollback would never show as an increase. Labelled ones: every combination of their
    /// known values (none if any label is open-ended, e.g. topic).
    /// </summary>
    private void PublishKnownLabelSetsLocked(Family family)
    {
        if (family.Kind == MetricKind.Gauge || family.Definition is not { } definition) return;
        IEnumerable<string[]> sets = [[]];
        foreach (var label in family.LabelNames!)
        {
            if (!definition.KnownLabelValues.TryGetValue(label, out var known) || known.Count == 0) return;
            sets = sets.SelectMany(set => known.Select(v => (string[])[.. set, v])).ToList();
        }
        foreach (var values in sets)
        {
            family.Series.TryAdd(string.Join('\u001f', values), values);
            Child(family, values).Publish();
        }
    }

    private static ChildBase Child(Family family, string[] values) => family.Collector switch
    {
        Counter counter => (ChildBase)counter.WithLabels(values),
        Gauge gauge => (ChildBase)gauge.WithLabels(values),
        Histogram histogram => (ChildBase)histogram.WithLabels(values),
        _ => throw new InvalidOperationException($"{family.Name} has no collector"),
    };

    private void Reject(string metric, string reason)
    {
        lock (gate) RejectLocked(metric, reason);
    }

    private void RejectLocked(string metric, string reason)
    {
        rejections ??= factory.CreateCounter(MetricCatalog.LabelRejectionsTotal.Name, MetricCatalog.LabelRejectionsTotal.Help,
            new CounterConfiguration { LabelNames = ["metric", "reason"] });
        rejections.WithLabels(metric, reason).Inc();
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

    /// <summary>One metric: its prometheus-net collector and the series it holds (for the series limit and removal).</summary>
    private sealed class Family(string name, MetricKind kind, string help, MetricDefinition? definition, double[]? bounds)
    {
        public string Name { get; } = name;
        public MetricKind Kind { get; } = kind;
        public string Help { get; } = help;
        public MetricDefinition? Definition { get; } = definition;
        public double[]? Bounds { get; } = bounds;
        /// <summary>Sorted; null until known (an instrument outside the catalog, before its first measurement).</summary>
        public string[]? LabelNames { get; set; }
        public Collector? Collector { get; set; }
        public int LiveInstruments { get; set; }
        /// <summary>Label values by joined key, for every series published.</summary>
        public Dictionary<string, string[]> Series { get; } = new(StringComparer.Ordinal);
        /// <summary>What the observable instruments reported in the scrape in progress (sum for counters, last value for gauges).</summary>
        public Dictionary<string, (string[] Values, double Value)>? Observed { get; set; }
        public HashSet<string> ObservedLastScrape { get; set; } = new(StringComparer.Ordinal);
    }

    private sealed record Binding(Family Family, bool Observable, bool Accumulate);
}
