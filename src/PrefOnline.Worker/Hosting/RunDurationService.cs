using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PrefOnline.Worker.Hosting;

/// <summary>Stops the host cleanly once the configured run time has passed (<c>--duration</c>).</summary>
public sealed class RunDurationService(TimeSpan duration, IHostApplicationLifetime lifetime, ILogger<RunDurationService> logger, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(duration, time, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        logger.LogInformation("Run time of {Duration} reached: stopping", duration);
        lifetime.StopApplication();
    }
}
