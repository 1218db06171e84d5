using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Cli;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Tests.Demo;

/// <summary>
/// The whole worker in process on <c>prefonline init --arch llama --preset tiny</c>'s checkpoint with the embedded transport's
/// simulated users, as LlamaWorkerTests and LoraWorkerTests run it: small updates often (12 new tokens, an update every 16
/// rollouts or 2 s) so a few updates cost seconds, ports chosen by the system, the demo's console and report off.
/// </summary>
internal sealed class LlamaWorkerRun
{
    private readonly Dictionary<string, string?> settings;

    /// <summary>Writes the initial policy into <paramref name="directory"/>/policy; checkpoints go to <paramref name="directory"/>/checkpoints.</summary>
    /// <param name="overrides">Settings of the test (e.g. Learner:Adapter:*), applied last.</param>
    public LlamaWorkerRun(string directory, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        InitialPolicy = Path.Combine(directory, "policy");
        Checkpoints = Path.Combine(directory, "checkpoints");
        InitCommand.Write(InitialPolicy, InitCommand.Shape("llama", "tiny"), seed: 5);
        settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Model:InitialPolicy"] = InitialPolicy,
            ["Checkpoints:Directory"] = Checkpoints,
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["PolicyDistribution:Port"] = "0",
            ["Demo:OutputDirectory"] = Path.Combine(directory, "report"),
            ["Demo:Console"] = "false",
            ["Demo:Duration"] = "00:00:00",
            ["Worker:TensorThreads"] = "2",
            // A random init samples near-uniform tokens, so completions run to MaxNewTokens: keep them short.
            ["Generation:MaxNewTokens"] = "12",
            ["Learner:UpdateEverySamples"] = "16",
            ["Learner:BatchSize"] = "16",
            ["Learner:HumanPairsPerUpdate"] = "8",
            ["Learner:UpdateInterval"] = "00:00:02",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
    }

    /// <summary>The initial policy's directory (init's output).</summary>
    public string InitialPolicy { get; }

    /// <summary>The checkpoint store.</summary>
    public string Checkpoints { get; }

    public IConfiguration Configuration { get; }

    /// <summary>Checks the configuration (no problem allowed) and returns its settings.</summary>
    public WorkerSettings Settings()
    {
        var (checkedSettings, problems) = ConfigurationCheck.Check(Configuration);
        Assert.Empty(problems);
        return checkedSettings;
    }

    /// <summary>
    /// Starts the host (resuming from the store when it holds checkpoints), waits until <paramref name="updates"/> updates
    /// are accepted, reads /readyz, stops cleanly and asserts the final checkpoint was written. Returns /readyz's answer
    /// (success, body) as it was before the stop.
    /// </summary>
    public async Task<(bool Ready, string Body)> RunUntilUpdatesAsync(int updates, TimeSpan timeout)
    {
        await using var app = WorkerHost.Build(Configuration, Settings());
        var status = app.Services.GetRequiredService<PipelineStatus>();
        using var deadline = new CancellationTokenSource(timeout);
        await app.StartAsync(deadline.Token);
        using var http = new HttpClient { BaseAddress = WorkerHost.Address(app) };
        while (status.Updates.Count < updates)
        {
            deadline.Token.ThrowIfCancellationRequested();
            await Task.Delay(250, deadline.Token);
        }
        using var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative), deadline.Token);
        var body = await ready.Content.ReadAsStringAsync(deadline.Token);
        await app.StopAsync(deadline.Token);
        Assert.True(app.Services.GetRequiredService<PipelineService>().Completed, "the final checkpoint was not written on stop");
        return (ready.IsSuccessStatusCode, body);
    }
}
