using System.Diagnostics.Metrics;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

/// <summary>
/// Meters named "PrefOnline" that only this test's exporter sees: tests run in parallel in one
/// process, and every exporter would otherwise export every test's instruments.
/// </summary>
internal sealed class IsolatedMeter : IDisposable
{
    private readonly object scope = new();
    private readonly List<Meter> meters = [];

    public Meter Create(string name = MetricCatalog.MeterName)
    {
        var meter = new Meter(new MeterOptions(name) { Scope = scope });
        meters.Add(meter);
        return meter;
    }

    public PrometheusExporterOptions Options(PrometheusExporterOptions? baseOptions = null) =>
        (baseOptions ?? new PrometheusExporterOptions()) with { MeterFilter = m => ReferenceEquals(m.Scope, scope) };

    public PrometheusExporter Exporter(PrometheusExporterOptions? baseOptions = null) => new(Options(baseOptions));

    public void Dispose()
    {
        foreach (var meter in meters) meter.Dispose();
    }
}
