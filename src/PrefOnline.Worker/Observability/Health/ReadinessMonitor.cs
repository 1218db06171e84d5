using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// Re-evaluates readiness every <see cref="ObservabilityOptions.ReadinessInterval"/> so
/// <c>prefonline_ready</c> is current even when nothing calls /readyz (outside Kubernetes), and logs
/// each change of verdict with its reasons: a warning when a ready worker stops being ready, information
/// while it is starting (not ready yet is the normal state of a starting pod, not a problem).
/// </summary>
public sealed class ReadinessMonitor(HealthService health, IOptions<ObservabilityOptions> options, ILogger<ReadinessMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        bool? last = null;
        using var timer = new PeriodicTimer(options.Value.ReadinessInterval);
        do
        {
            var report = await health.CheckReadinessAsync(stoppingToken);
            if (report.Healthy != last)
            {
                var reasons = string.Join("; ", report.Checks.Select(c => $"{c.Name}: {c.Reason}"));
                if (report.Healthy) logger.LogInformation("Ready: {Reasons}", reasons);
                else if (last is null) logger.LogInformation("Not ready yet: {Reasons}", reasons);
                else logger.LogWarning("Not ready: {Reasons}", reasons);
                last = report.Healthy;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
