using System.Reflection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PrefOnline.Tensors;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// Runs the role's pipeline inside the host. Start-up: the BLAS check (its warning is logged), build info.
/// Stop (SIGTERM, Ctrl-C, --duration): the pipeline is told to stop and given until the host's shutdown
/// timeout to finish the step in flight, write its final checkpoint and commit. A fatal error is logged as
/// one line, recorded for the exit code, and stops the host.
/// </summary>
public sealed class PipelineService(
    WorkerSettings settings,
    TensorThread thread,
    PrefOnlineMetrics metrics,
    ExitStatus exitStatus,
    IHostApplicationLifetime lifetime,
    ILogger<PipelineService> logger,
    Func<CancellationToken, CancellationToken, Task> run) : BackgroundService
{
    private readonly CancellationTokenSource shutdown = new();
    private volatile bool completed;

    /// <summary>True when the pipeline ran to its end (after a stop: final checkpoint written, offsets committed).</summary>
    public bool Completed => completed;

    public static string Version => typeof(PipelineService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var role = WorkerRoles.Name(settings.Worker.Role);
        metrics.SetBuildInfo(Version, role);
        try
        {
            var gflops = await thread.RunAsync(() => GemmProbe.MeasureGflops(n: 384, repeats: 3), stoppingToken).ConfigureAwait(false);
            logger.LogInformation("Tensor engine: TorchSharp {TorchSharp} ({Backend}), LibTorch {LibTorch}, models on {Placement}; fp32 GEMM {Gflops:0} GFLOP/s on {Threads} thread(s)",
                TorchEngine.TorchSharpVersion, TorchEngine.Backend, TorchEngine.LibTorchVersion, settings.Model.Placement, gflops, thread.IntraOpThreads);
            logger.LogInformation("prefonline {Version} running role {Role} on the {Transport} transport", Version, role, settings.Embedded ? "embedded" : "Kafka");
            await run(stoppingToken, shutdown.Token).ConfigureAwait(false);
            completed = true;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested && !shutdown.IsCancellationRequested)
        {
            completed = true; // stopped before the pipeline had anything to save
        }
        catch (Exception e)
        {
            var line = e is InvalidDataException or InvalidOperationException or IOException or UnauthorizedAccessException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            logger.LogCritical(e, "Fatal: {Message}", line);
            exitStatus.Fail(line);
            lifetime.StopApplication();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The host's token fires when its shutdown timeout runs out: then the pipeline must give up waiting.
        using var registration = cancellationToken.Register(shutdown.Cancel);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        shutdown.Dispose();
        base.Dispose();
    }
}
