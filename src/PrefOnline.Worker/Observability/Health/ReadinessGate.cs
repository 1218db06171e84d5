namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// A readiness check that a service sets itself, e.g. <c>model</c> (not ready until the policy is loaded)
/// or <c>kafka</c> (set from the client's connection events). Starts not ready with the given reason.
/// </summary>
public sealed class ReadinessGate(string name, string initialReason) : IReadinessContributor
{
    private volatile ProbeResult current = ProbeResult.Fail(name, initialReason);

    public string Name { get; } = name;

    public bool IsReady => current.Healthy;

    public void MarkReady(string reason) => current = ProbeResult.Pass(Name, reason);

    public void MarkNotReady(string reason) => current = ProbeResult.Fail(Name, reason);

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken) => Task.FromResult(current);
}
