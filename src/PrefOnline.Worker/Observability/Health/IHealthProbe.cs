namespace PrefOnline.Worker.Observability.Health;

/// <summary>A check behind /healthz or /readyz. It should answer quickly; the endpoint enforces a timeout and turns exceptions into failures.</summary>
public interface IHealthProbe
{
    /// <summary>Short, stable, lower-case name shown in the response body (e.g. <c>model</c>, <c>kafka</c>).</summary>
    string Name { get; }

    Task<ProbeResult> CheckAsync(CancellationToken cancellationToken);
}
