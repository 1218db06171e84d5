namespace PrefOnline.Worker.Observability;

/// <summary>
/// Optional OTLP push of the same instruments (section <c>Observability:Otlp</c>), off by default:
/// /metrics is the primary interface. Uses the OpenTelemetry 1.20.1 SDK, which listens to the meter
/// with its own MeterListener beside the Prometheus aggregator (the two do not interfere).
/// </summary>
public sealed class OtlpOptions
{
    /// <summary>Push metrics to an OpenTelemetry collector as well as serving /metrics.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Collector URL. gRPC: <c>http://otel-collector:4317</c>. HTTP/protobuf: the full URL including
    /// the signal path, <c>http://otel-collector:4318/v1/metrics</c> (the SDK uses a configured endpoint as is).
    /// </summary>
    public string? Endpoint { get; set; }

    /// <summary>Grpc (default) or HttpProtobuf.</summary>
    public OtlpProtocol Protocol { get; set; } = OtlpProtocol.Grpc;

    /// <summary>How often metrics are pushed.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Per-export timeout.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Extra request headers, <c>key=value,key2=value2</c> (e.g. an API key; prefer an environment variable from a Secret).</summary>
    public string? Headers { get; set; }
}
