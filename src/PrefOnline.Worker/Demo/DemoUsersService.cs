using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// The embedded demo's users (PrefOnline.Streaming's <see cref="SimulatedUsers"/>): once the learner runs, they ask
/// prompts on the prompts topic, read the rollouts the worker publishes, and label them on the feedback topic
/// by their hidden preference. They ask the prompts the demo policy was fitted on unless Demo:Users:Prompts says otherwise.
/// </summary>
public sealed class DemoUsersService(WorkerSettings settings, IStreamTransport transport, PipelineStatus status, ILoggerFactory loggers, TimeProvider time) : BackgroundService
{
    private volatile SimulatedUsers? users;

    /// <summary>The running population (null until the learner has a policy).</summary>
    public SimulatedUsers? Users => users;

    public SimulatedUsersOptions Options()
    {
        var options = settings.Demo.Users.ToSimulation(transport.Topics.Prompts, transport.Topics.Feedback, settings.Generation.SamplesPerPrompt);
        if (settings.Demo.Users.Prompts is not { Count: > 0 } && string.IsNullOrWhiteSpace(settings.Model.InitialPolicy))
            options.Prompts = DemoPolicySource.Prompts(settings.Demo.Policy).ToList();
        return options;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!status.Running) await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var population = new SimulatedUsers(Options(), transport.Sink,
            resume => transport.Subscribe("simulated-users", [transport.Topics.Rollouts], resume),
            loggers.CreateLogger<SimulatedUsers>(), time);
        users = population;
        await population.RunAsync(stoppingToken).ConfigureAwait(false);
    }
}
