namespace PrefOnline.Worker.Observability.Health;

/// <summary>A readiness check computed on demand, e.g. a Kafka metadata round-trip.</summary>
public sealed class DelegateReadinessContributor(string name, Func<CancellationToken, Task<ProbeResult>> check) : IReadinessContributor
{
    public string Name { get; } = name;

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken) => check(cancellationToken);
}
