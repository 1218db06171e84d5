using System.Reflection;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// The optional OTLP push (<see cref="OtlpOptions"/>). When enabled it owns an OpenTelemetry
/// MeterProvider subscribed to the PrefOnline meter; disposing it flushes the last export.
/// OpenTelemetry.Extensions.Hosting is absent here, so the host owns this object's lifetime directly.
/// Coexistence with <see cref="PrometheusExporter"/>: each has its own MeterListener and both receive
/// every measurement; observable callbacks run once per reader (they are side-effect free).
/// </summary>
public sealed class OtlpMetricsExporter : IDisposable
{
    private readonly MeterProvider? provider;

    public OtlpMetricsExporter(IOptions<ObservabilityOptions> options)
    {
        var otlp = options.Value.Otlp;
        if (otlp is not { Enabled: true }) return;
        var version = typeof(OtlpMetricsExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        provider = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService("prefonline", serviceVersion: version))
            .AddMeter(MetricCatalog.MeterName)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = new Uri(otlp.Endpoint!);
                exporter.Protocol = otlp.Protocol == OtlpProtocol.Grpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                exporter.TimeoutMilliseconds = (int)otlp.Timeout.TotalMilliseconds;
                if (!string.IsNullOrEmpty(otlp.Headers)) exporter.Headers = otlp.Headers;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)otlp.ExportInterval.TotalMilliseconds;
                reader.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
            })
            .Build();
    }

    public bool Enabled => provider is not null;

    /// <summary>Export now (used at shutdown and by tests); false if disabled or the export failed.</summary>
    public bool ForceFlush(TimeSpan timeout) => provider?.ForceFlush((int)timeout.TotalMilliseconds) ?? false;

    public void Dispose() => provider?.Dispose();
}
