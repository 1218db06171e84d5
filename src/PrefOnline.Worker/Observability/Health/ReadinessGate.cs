namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// A readiness check that a service sets itself, e.g. <c>model</c> (not ready until the policy is loaded)
/// or <c>kafka</c> (set from the client's connection events). Starts not ready with the given reason.
/// </summary>
public sealed class ReadinessGate(string name, string initialReason) : IReadinessContributor
{
    private volatile ProbeResult current = ProbeResult.Fail(name, initialReason);
    private volatile Func<string>? liveReason;

    public string Name { get; } = name;

    public bool IsReady => current.Healthy;

    public void MarkReady(string reason)
    {
        liveReason = null;
        current = ProbeResult.Pass(Name, reason);
    }

    /// <summary>Ready, with a reason read at each check (e.g. the policy version now served, not the one at start).</summary>
    public void MarkReady(Func<string> reason)
    {
        liveReason = reason;
        current = ProbeResult.Pass(Name, reason());
    }

    public void MarkNotReady(string reason)
    {
        liveReason = null;
        current = ProbeResult.Fail(Name, reason);
    }

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken) =>
        Task.FromResult(liveReason is { } reason && current.Healthy ? ProbeResult.Pass(Name, reason()) : current);
}
