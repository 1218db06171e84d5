using System.CommandLine;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline run [--config FILE] [--role all|generator|learner] [--duration T] [--checkpoint-dir DIR] [--port P]</c>:
/// the worker. Configuration: appsettings.json next to the binary → --config → PREFONLINE__Section__Key → these flags.
/// With no Kafka configured it runs the embedded demo (simulated users, a live console, a report on exit).
/// Exit codes: 0 clean stop (SIGTERM, Ctrl-C, --duration), 1 fatal error, 2 invalid configuration or arguments
/// (one line per problem, naming its key).
/// </summary>
public static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "A configuration file (JSON) layered over the defaults.", HelpName = "FILE" };
        var role = new Option<string?>("--role") { Description = "all (default), generator or learner (overrides Worker:Role).", HelpName = "ROLE" };
        role.AcceptOnlyFromAmong([.. WorkerRoles.Names]);
        var duration = new Option<string?>("--duration") { Description = "Stop cleanly after this long, e.g. 90s, 5m, 1h30m, 00:05:00; 0 = until stopped (overrides Worker:Duration; the demo's default is Demo:Duration).", HelpName = "T" };
        var checkpointDir = new Option<string?>("--checkpoint-dir") { Description = "Checkpoint store directory (overrides Checkpoints:Directory).", HelpName = "DIR" };
        var port = new Option<int?>("--port") { Description = "Port of /metrics, /healthz and /readyz (overrides Observability:Port; 0 = any free port).", HelpName = "P" };

        var command = new Command("run", "Run the worker: consume prompts and feedback, generate, score, learn, checkpoint, publish (the embedded demo without Kafka).");
        foreach (var option in new Option[] { config, role, duration, checkpointDir, port }) command.Options.Add(option);
        command.SetAction((parse, ct) => CliAction.RunAsync(async _ =>
        {
            var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            if (parse.GetValue(role) is { } r) overrides["Worker:Role"] = r;
            if (parse.GetValue(duration) is { } d)
            {
                if (!DurationText.TryParse(d, out var span)) throw new CliException($"run: --duration '{d}' is not a duration (use e.g. 90s, 5m, 1h30m or 00:05:00; 0 = until stopped)", CliAction.UsageError);
                overrides["Worker:Duration"] = span.ToString("c", CultureInfo.InvariantCulture);
            }
            if (parse.GetValue(checkpointDir) is { } dir) overrides["Checkpoints:Directory"] = dir;
            if (parse.GetValue(port) is { } p) overrides["Observability:Port"] = p.ToString(CultureInfo.InvariantCulture);
            return await RunAsync(parse.GetValue(config), overrides, Console.Error);
        }, CancellationToken.None)); // the host handles SIGTERM/Ctrl-C itself: a stop is a clean stop, not a cancelled command
        return command;
    }

    /// <summary>Validates the configuration, runs the host until it stops, and returns the exit code.</summary>
    public static async Task<int> RunAsync(string? configFile, IReadOnlyDictionary<string, string?> overrides, TextWriter errors)
    {
        Microsoft.Extensions.Configuration.IConfigurationRoot configuration;
        try
        {
            configuration = WorkerConfiguration.Build(configFile, overrides);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException or FormatException)
        {
            throw new CliException($"run: {e.Message}", CliAction.UsageError);
        }
        var (settings, problems) = ConfigurationCheck.Check(configuration);
        if (problems.Count > 0)
        {
            foreach (var problem in problems) await errors.WriteLineAsync($"prefonline run: {problem}");
            await errors.WriteLineAsync($"prefonline run: {problems.Count} invalid setting(s); see config/README.md for every key");
            return ExitStatus.InvalidConfiguration;
        }

        await using var app = WorkerHost.Build(configuration, settings);
        var exit = app.Services.GetRequiredService<ExitStatus>();
        var pipeline = app.Services.GetRequiredService<PipelineService>();
        try
        {
            await app.RunAsync();
        }
        catch (OptionsValidationException e)
        {
            foreach (var failure in e.Failures) await errors.WriteLineAsync($"prefonline run: {failure}");
            return ExitStatus.InvalidConfiguration;
        }
        catch (IOException e)
        {
            await errors.WriteLineAsync($"prefonline run: cannot start: {e.Message} (is Observability:Port {settings.Observability.Port} in use? --port picks another; the policy files use PolicyDistribution:Port {settings.PolicyDistribution.Port})");
            return ExitStatus.Fatal;
        }
        if (exit.Code != ExitStatus.Success)
        {
            await errors.WriteLineAsync($"prefonline run: fatal: {exit.Reason}");
            return exit.Code;
        }
        if (!pipeline.Completed)
        {
            await errors.WriteLineAsync($"prefonline run: stopped before the final checkpoint was written (Worker:ShutdownTimeout {settings.Worker.ShutdownTimeout:c} ran out); the next start resumes from the last checkpoint");
            return ExitStatus.Fatal;
        }
        return ExitStatus.Success;
    }
}
