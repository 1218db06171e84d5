namespace PrefOnline.Worker.Observability.Health;

/// <summary>Runs checks concurrently, each bounded by a timeout; a timeout or an exception is a failure with a reason, never a crash.</summary>
public static class HealthEvaluator
{
    public static async Task<HealthReport> EvaluateAsync(IEnumerable<IHealthProbe> probes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(probes.Select(p => CheckOneAsync(p, timeout, cancellationToken)));
        var ordered = results.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        return new HealthReport(ordered.All(r => r.Healthy), ordered);
    }

    private static async Task<ProbeResult> CheckOneAsync(IHealthProbe probe, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var check = probe.CheckAsync(deadline.Token);
            var finished = await Task.WhenAny(check, Task.Delay(Timeout.InfiniteTimeSpan, deadline.Token));
            if (finished != check)
            {
                cancellationToken.ThrowIfCancellationRequested();
                return ProbeResult.Fail(probe.Name, $"did not answer within {timeout.TotalSeconds:0.###} s");
            }
            return await check;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ProbeResult.Fail(probe.Name, $"did not answer within {timeout.TotalSeconds:0.###} s");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return ProbeResult.Fail(probe.Name, $"check threw {e.GetType().Name}: {e.Message}");
        }
    }
}
