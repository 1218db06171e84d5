using System.Diagnostics.Metrics;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

public sealed class PrometheusExporterTests : IDisposable
{
    private readonly IsolatedMeter meters = new();

    public void Dispose() => meters.Dispose();

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    [Fact]
    public async Task CountersFromSeveralAssembliesMeterInstancesAddUpPerLabelSet()
    {
        using var exporter = meters.Exporter();
        // Two components (e.g. the Kafka source and the DLQ sink) each create the counter on their own Meter.
        var a = meters.Create().CreateCounter<long>("prefonline_messages_total");
        var b = meters.Create().CreateCounter<int>("prefonline_messages_total");
        a.Add(2, Tag("topic", "prefonline.feedback"), Tag("result", "accepted"));
        b.Add(3, Tag("result", "accepted"), Tag("topic", "prefonline.feedback")); // tag order does not matter
        b.Add(1, Tag("topic", "prefonline.feedback"), Tag("result", "dead_letter"));

        var text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_messages_total{result=\"accepted\",topic=\"prefonline.feedback\"} 5\n", text);
        Assert.Contains("prefonline_messages_total{result=\"dead_letter\",topic=\"prefonline.feedback\"} 1\n", text);
        Assert.Single(text.Split('\n'), l => l.StartsWith("# TYPE prefonline_messages_total counter"));
    }

    [Fact]
    public async Task CounterNamesGetTheTotalSuffixAndNegativeIncrementsAreRefused()
    {
        using var exporter = meters.Exporter();
        var counter = meters.Create().CreateCounter<double>("test_events", unit: null, description: "events");
        counter.Add(1.5);
        counter.Add(-1);
        counter.Add(double.NaN);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("# TYPE test_events_total counter\ntest_events_total 1.5\n", text);
        Assert.Contains("prefonline_metrics_label_rejections_total{metric=\"test_events_total\",reason=\"invalid_value\"} 2", text);
    }

    [Fact]
    public async Task GaugesKeepTheLastValueAndUpDownCountersTheRunningSum()
    {
        using var exporter = meters.Exporter();
        var meter = meters.Create();
        var gauge = meter.CreateGauge<double>("test_temperature");
        var updown = meter.CreateUpDownCounter<int>("test_in_flight");
        gauge.Record(3);
        gauge.Record(-7.25);
        updown.Add(5);
        updown.Add(-2);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("# TYPE test_temperature gauge\ntest_temperature -7.25\n", text);
        Assert.Contains("# TYPE test_in_flight gauge\ntest_in_flight 3\n", text);
    }

    [Fact]
    public async Task ObservableInstrumentsAreReadAtEachScrapeAndVanishedSeriesDisappear()
    {
        using var exporter = meters.Exporter();
        var partitions = new Dictionary<int, long> { [0] = 10, [1] = 20 };
        meters.Create().CreateObservableGauge("prefonline_consumer_lag",
            () => partitions.Select(p => new Measurement<long>(p.Value, Tag("topic", "prefonline.prompts"), Tag("partition", p.Key))));
        var first = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_consumer_lag{partition=\"0\",topic=\"prefonline.prompts\"} 10\n", first);
        Assert.Contains("prefonline_consumer_lag{partition=\"1\",topic=\"prefonline.prompts\"} 20\n", first);

        partitions.Remove(0); // rebalanced away
        partitions[1] = 4;
        var second = await exporter.ScrapeAsync();
        Assert.DoesNotContain("partition=\"0\"", second);
        Assert.Contains("prefonline_consumer_lag{partition=\"1\",topic=\"prefonline.prompts\"} 4\n", second);
    }

    [Fact]
    public async Task ObservableCountersExposeTheObservedTotal()
    {
        using var exporter = meters.Exporter();
        long total = 7;
        meters.Create().CreateObservableCounter("test_bytes_total", () => total);
        Assert.Contains("test_bytes_total 7\n", await exporter.ScrapeAsync());
        total = 9;
        Assert.Contains("test_bytes_total 9\n", await exporter.ScrapeAsync());
    }

    [Fact]
    public async Task HistogramBucketsComeFromAdviceAndBoundsAreInclusive()
    {
        using var exporter = meters.Exporter();
        var histogram = meters.Create().CreateHistogram<double>("test_latency_seconds", "s", "latency", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10] });
        foreach (var v in new[] { 0.05, 0.1, 0.5, 1, 20 }) histogram.Record(v);
        var text = await exporter.ScrapeAsync();
        Assert.Contains(
            "test_latency_seconds_bucket{le=\"0.1\"} 2\n" +
            "test_latency_seconds_bucket{le=\"1\"} 4\n" +
            "test_latency_seconds_bucket{le=\"10\"} 4\n" +
            "test_latency_seconds_bucket{le=\"+Inf\"} 5\n", text);
        Assert.Contains("test_latency_seconds_sum 21.65\n", text);
        Assert.Contains("test_latency_seconds_count 5\n", text);
    }

    [Fact]
    public async Task HistogramsWithoutAdviceUseTheCatalogTableOrPrometheusDefaults()
    {
        using var exporter = meters.Exporter();
        var meter = meters.Create();
        meter.CreateHistogram<double>("prefonline_update_duration_seconds").Record(42);
        meter.CreateHistogram<int>("test_sizes").Record(3);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_update_duration_seconds_bucket{le=\"30\"} 0\nprefonline_update_duration_seconds_bucket{le=\"60\"} 1\n", text);
        Assert.Contains("test_sizes_bucket{le=\"0.005\"} 0\n", text);
        Assert.Contains("test_sizes_bucket{le=\"10\"} 1\n", text);
    }

    [Fact]
    public async Task OnlyAllowListedLabelNamesPassAndPromptTextNeverReachesALabel()
    {
        using var exporter = meters.Exporter();
        var counter = meters.Create().CreateCounter<long>("prefonline_messages_total");
        const string prompt = "Write a poem about the sea";
        counter.Add(1, Tag("topic", "prefonline.prompts"), Tag("result", "accepted"), Tag("prompt", prompt));
        counter.Add(1, Tag("topic", "prefonline.prompts"), Tag("result", "Once upon a time\nthere was"));
        counter.Add(1, Tag("topic", new string('x', 65)), Tag("result", "accepted"));
        var text = await exporter.ScrapeAsync();
        Assert.DoesNotContain(prompt, text);
        Assert.DoesNotContain("Once upon", text);
        Assert.DoesNotContain(new string('x', 65), text);
        Assert.Contains("prefonline_messages_total{result=\"accepted\",topic=\"prefonline.prompts\"} 1\n", text);
        Assert.Contains("prefonline_messages_total{result=\"_rejected\",topic=\"prefonline.prompts\"} 1\n", text);
        Assert.Contains("prefonline_messages_total{result=\"accepted\",topic=\"_rejected\"} 1\n", text);
        Assert.Contains("{metric=\"prefonline_messages_total\",reason=\"key_not_allowed\"} 1", text);
        Assert.Contains("{metric=\"prefonline_messages_total\",reason=\"control_character\"} 1", text);
        Assert.Contains("{metric=\"prefonline_messages_total\",reason=\"value_too_long\"} 1", text);
    }

    [Fact]
    public async Task InstrumentsOutsideTheCatalogGetTheDefaultAllowListAndSanitisedNames()
    {
        using var exporter = meters.Exporter();
        var counter = meters.Create().CreateCounter<long>("test.http-requests");
        counter.Add(1, Tag("status", 200), Tag("user_id", "u-123"));
        var text = await exporter.ScrapeAsync();
        Assert.Contains("test_http_requests_total{status=\"200\"} 1\n", text);
        Assert.DoesNotContain("u-123", text);
        Assert.Equal("_1a_b", PrometheusExporter.SanitizeMetricName("1a-b"));
        Assert.Equal("x__reserved", PrometheusExporter.SanitizeLabelName("__reserved"));
        Assert.Equal("a:b", PrometheusExporter.SanitizeMetricName("a:b"));
        Assert.Equal("a_b", PrometheusExporter.SanitizeLabelName("a:b"));
    }

    [Fact]
    public async Task TheSeriesLimitFoldsNewLabelSetsIntoOneOverflowSeries()
    {
        using var exporter = meters.Exporter(new PrometheusExporterOptions { MaxSeriesPerMetric = 3 });
        var counter = meters.Create().CreateCounter<long>("test_requests");
        for (var i = 0; i < 10; i++) counter.Add(1, Tag("topic", $"t{i}"));
        var text = await exporter.ScrapeAsync();
        Assert.Contains("test_requests_total{topic=\"t0\"} 1\n", text);
        Assert.Contains("test_requests_total{topic=\"t2\"} 1\n", text);
        Assert.DoesNotContain("topic=\"t3\"", text);
        Assert.Contains("test_requests_total{topic=\"_overflow\"} 7\n", text);
        Assert.Contains("{metric=\"test_requests_total\",reason=\"series_limit\"} 7", text);
    }

    [Fact]
    public async Task AnInstrumentOfTheSameNameButAnotherTypeIsIgnoredAndCounted()
    {
        using var exporter = meters.Exporter();
        meters.Create().CreateGauge<double>("test_clash").Record(1);
        meters.Create().CreateHistogram<double>("test_clash").Record(5);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("# TYPE test_clash gauge\ntest_clash 1\n", text);
        Assert.DoesNotContain("test_clash_bucket", text);
        Assert.Contains("{metric=\"test_clash\",reason=\"type_conflict\"} 1", text);
    }

    [Fact]
    public async Task AThrowingCallbackIsCountedAndTheScrapeStillSucceeds()
    {
        using var exporter = meters.Exporter();
        var meter = meters.Create();
        meter.CreateObservableGauge<double>("test_broken", (Func<double>)(() => throw new InvalidOperationException("boom")));
        meter.CreateObservableGauge("test_fine", () => 2.0);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("test_fine 2\n", text);
        Assert.Contains("prefonline_metrics_callback_errors_total 1\n", text);
    }

    [Fact]
    public async Task OtherMetersAndDisposedInstrumentsAreNotExposed()
    {
        using var exporter = meters.Exporter();
        meters.Create("SomethingElse").CreateCounter<long>("other_total").Add(1);
        var meter = meters.Create();
        meter.CreateCounter<long>("test_gone").Add(1);
        Assert.Contains("test_gone_total 1", await exporter.ScrapeAsync());
        meter.Dispose();
        var text = await exporter.ScrapeAsync();
        // prometheus-net keeps a declared metric's HELP and TYPE lines; its samples are gone.
        Assert.DoesNotContain(text.Split('\n'), l => l.StartsWith("test_gone", StringComparison.Ordinal));
        Assert.DoesNotContain("other_total", text);
    }

    [Fact]
    public async Task ConcurrentRecordingLosesNothing()
    {
        using var exporter = meters.Exporter();
        var meter = meters.Create();
        var counter = meter.CreateCounter<long>("test_parallel");
        var histogram = meter.CreateHistogram<double>("test_parallel_seconds");
        Parallel.For(0, 8, worker =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                counter.Add(1, Tag("source", worker % 2 == 0 ? "model" : "human"));
                histogram.Record(0.01);
            }
        });
        var text = await exporter.ScrapeAsync();
        Assert.Contains("test_parallel_total{source=\"human\"} 40000\n", text);
        Assert.Contains("test_parallel_total{source=\"model\"} 40000\n", text);
        Assert.Contains("test_parallel_seconds_count 80000\n", text);
    }

    [Fact]
    public async Task TwoScrapesOfTheSameStateAreIdentical()
    {
        using var exporter = meters.Exporter();
        var counter = meters.Create().CreateCounter<long>("test_stable");
        foreach (var topic in new[] { "c", "a", "b" }) counter.Add(1, Tag("topic", topic), Tag("result", "ok"));
        var first = await exporter.ScrapeAsync();
        Assert.Equal(first, await exporter.ScrapeAsync());
        Assert.True(first.IndexOf("topic=\"a\"", StringComparison.Ordinal) < first.IndexOf("topic=\"b\"", StringComparison.Ordinal));
    }
}
