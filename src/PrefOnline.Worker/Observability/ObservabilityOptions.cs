using PrefOnline.Tensors;

namespace PrefOnline.Worker.Observability;

/// <summary>Configuration section <c>Observability</c>: where /metrics, /healthz and /readyz listen, probe timing, OTLP.</summary>
public sealed class ObservabilityOptions
{
    public const string SectionName = "Observability";

    /// <summary>TCP port of the HTTP endpoints (the chart's metrics port). 0 picks a free port (tests).</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Address to bind: 0.0.0.0 in a container, 127.0.0.1 on a workstation.</summary>
    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>Longest a single health or readiness check may take before it counts as failed.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long the liveness probe waits for the tensor thread to answer a ping before calling it busy.</summary>
    public TimeSpan TensorThreadAnswerWait { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long one ping may stay unanswered before the tensor thread counts as stuck (/healthz fails). Longer than the slowest update.</summary>
    public TimeSpan TensorThreadStallTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often readiness is re-evaluated for <c>prefonline_ready</c> between /readyz calls.</summary>
    public TimeSpan ReadinessInterval { get; set; } = TimeSpan.FromSeconds(5);

    public OtlpOptions Otlp { get; set; } = new();
}
