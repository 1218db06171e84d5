using Microsoft.Extensions.Options;

namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// Evaluates the registered <see cref="ILivenessProbe"/>s (/healthz) and <see cref="IReadinessContributor"/>s
/// (/readyz). With no liveness probe registered, answering at all is the proof of life. Every
/// readiness evaluation also sets <c>prefonline_ready</c>, which is how Prometheus sees readiness
/// (<c>up</c> only says the scrape worked: a paused learner still serves /metrics).
/// </summary>
public sealed class HealthService(
    IEnumerable<ILivenessProbe> livenessProbes,
    IEnumerable<IReadinessContributor> readinessContributors,
    PrefOnlineMetrics metrics,
    IOptions<ObservabilityOptions> options)
{
    private readonly ILivenessProbe[] liveness = livenessProbes.ToArray();
    private readonly IReadinessContributor[] readiness = readinessContributors.ToArray();

    public async Task<HealthReport> CheckLivenessAsync(CancellationToken cancellationToken)
    {
        if (liveness.Length == 0) return new HealthReport(true, [ProbeResult.Pass("process", "alive")]);
        return await HealthEvaluator.EvaluateAsync(liveness, options.Value.ProbeTimeout, cancellationToken);
    }

    public async Task<HealthReport> CheckReadinessAsync(CancellationToken cancellationToken)
    {
        var report = readiness.Length == 0
            ? new HealthReport(true, [ProbeResult.Pass("process", "no readiness checks registered")])
            : await HealthEvaluator.EvaluateAsync(readiness, options.Value.ProbeTimeout, cancellationToken);
        metrics.SetReady(report.Healthy);
        return report;
    }
}
