using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Guardrails;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Observability.Health;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// Builds the <c>prefonline run</c> host: Microsoft.Extensions.Hosting with Kestrel serving /metrics, /healthz and
/// /readyz, one <see cref="TensorThread"/> for all tensor work, the transport (Kafka or embedded), the role's
/// pipeline (<see cref="PipelineService"/>), the learner's policy files on a port of their own
/// (<see cref="PolicyServer"/>, when <see cref="WorkerSettings.ServesPolicies"/>), and in embedded mode the demo
/// (simulated users, console, report).
/// Every section is validated before this is called (<see cref="ConfigurationCheck"/>), by the same validators
/// the options pipeline runs at start (ValidateOnStart, <see cref="SectionOptions"/>).
/// </summary>
public static class WorkerHost
{
    public static WebApplication Build(IConfiguration configuration, WorkerSettings settings, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory, EnvironmentName = Environments.Production });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(configuration);

        builder.Logging.ClearProviders();
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
            o.UseUtcTimestamp = false;
        });
        if (settings.Embedded && settings.Demo.Console)
        {
            // The demo's console is its progress table: the log goes to a file beside the report, and only
            // warnings and errors also reach the console.
            builder.Logging.AddProvider(new DemoLogFile(settings.Demo.OutputDirectory, TimeProvider.System));
            builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(null, LogLevel.Warning);
        }
        if (settings.Embedded && configuration["Logging:LogLevel:PrefOnline.Worker.Checkpoints"] is null)
        {
            // The demo checkpoints every few seconds; its console shows progress instead.
            builder.Logging.AddFilter("PrefOnline.Worker.Checkpoints", LogLevel.Warning);
            builder.Logging.AddFilter("PrefOnline.Worker.Pipeline.CheckpointCoordinator", LogLevel.Warning);
            builder.Logging.AddFilter("PrefOnline.Worker.Pipeline.PolicyPublisher", LogLevel.Warning);
        }

        var services = builder.Services;
        services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = settings.Worker.ShutdownTimeout;
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        services.AddSingleton(settings);
        services.AddSingleton(TimeProvider.System);
        services.AddSectionOptions(configuration);
        services.AddPrefOnlineObservability(configuration);
        builder.UsePrefOnlineObservabilityPort();

        services.AddSingleton(_ => new TensorThread("tensor", settings.Worker.TensorThreads));
        services.AddTensorThreadLiveness();
        services.AddSingleton(provider => new StreamingMetrics(provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton<IStreamTransport>(provider => settings.Embedded
            ? new EmbeddedStreamTransport(settings.Kafka.Topics, provider.GetRequiredService<StreamingMetrics>(), settings.Demo.Partitions, settings.Demo.PartitionCapacity)
            : new KafkaStreamTransport(settings.Kafka, settings.Validation.MaxRecordBytes, provider.GetRequiredService<StreamingMetrics>(), provider.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<ExitStatus>();
        services.AddSingleton<PipelineStatus>();
        services.AddSingleton<GuardrailHolder>();

        var modelGate = new ReadinessGate("model", "no policy loaded yet");
        services.AddSingleton(modelGate);
        services.AddSingleton<IReadinessContributor>(modelGate);
        services.AddSingleton<IReadinessContributor>(provider => new DelegateReadinessContributor("kafka", _ =>
        {
            var transport = provider.GetRequiredService<IStreamTransport>();
            if (transport.IsEmbedded) return Task.FromResult(ProbeResult.Pass("kafka", "embedded transport (no Kafka configured)"));
            return Task.FromResult(transport.Reachability switch
            {
                Streaming.Transport.BrokerReachability.Reachable => ProbeResult.Pass("kafka", "brokers reachable"),
                Streaming.Transport.BrokerReachability.Unreachable => ProbeResult.Fail("kafka", "no broker reachable (the clients keep reconnecting)"),
                _ => ProbeResult.Fail("kafka", "connecting to the brokers"),
            });
        }));
        if (settings.Worker.Role != WorkerRole.Generator)
        {
            services.AddSingleton<IReadinessContributor>(provider => new HeldGuardrailReadinessContributor(provider.GetRequiredService<GuardrailHolder>()));
            services.AddSingleton<CheckpointReadiness>();
            services.AddSingleton<IReadinessContributor>(provider => provider.GetRequiredService<CheckpointReadiness>());
            services.AddSingleton(provider => new PolicyServingLeases(provider.GetRequiredService<TimeProvider>()));
            if (settings.Serving.Publishers.Count > 0)
            {
                // docs/OPERATIONS.md, "Hand-off to the serving stack". Registered (and so started) before the pipeline, stopped after it.
                services.AddSingleton(provider => new ServingHandOff(settings.Serving,
                    ServingPublishers.Create(settings.Serving, provider.GetRequiredService<ILoggerFactory>()),
                    provider.GetRequiredService<PrefOnlineMetrics>(), provider.GetRequiredService<ILogger<ServingHandOff>>(), provider.GetRequiredService<TimeProvider>()));
                services.AddHostedService(provider => provider.GetRequiredService<ServingHandOff>());
                for (var i = 0; i < settings.Serving.Publishers.Count; i++)
                {
                    var index = i;
                    services.AddSingleton<IReadinessContributor>(provider => provider.GetRequiredService<ServingHandOff>().Checks[index]);
                }
            }
            services.AddSingleton(provider => CreateLearnerPipeline(provider, settings, configuration));
        }
        else
        {
            services.AddSingleton(provider => new GeneratorPipeline(settings.Generation, settings.Checkpoints, settings.Model, settings.InputValidation, settings.Kafka,
                settings.PolicyDistribution, settings.Worker.PolicyBaseUrl,
                provider.GetRequiredService<IStreamTransport>(), provider.GetRequiredService<TensorThread>(), provider.GetRequiredService<PrefOnlineMetrics>(),
                provider.GetRequiredService<StreamingMetrics>(), modelGate, provider.GetRequiredService<PipelineStatus>(),
                provider.GetRequiredService<ILoggerFactory>(), provider.GetRequiredService<TimeProvider>()));
        }

        services.AddSingleton(provider => new PipelineService(settings, provider.GetRequiredService<TensorThread>(), provider.GetRequiredService<PrefOnlineMetrics>(),
            provider.GetRequiredService<ExitStatus>(), provider.GetRequiredService<IHostApplicationLifetime>(), provider.GetRequiredService<ILogger<PipelineService>>(),
            settings.Worker.Role == WorkerRole.Generator
                ? provider.GetRequiredService<GeneratorPipeline>().RunAsync
                : provider.GetRequiredService<LearnerPipeline>().RunAsync));
        if (settings.ServesPolicies)
        {
            // Its own port, server and limits: docs/OPERATIONS.md, "Security". Registered before the pipeline, so it stops after it.
            services.AddSingleton(provider => new PolicyServer(settings.PolicyDistribution, new ServedLineage(settings.Checkpoints.Directory),
                provider.GetRequiredService<PolicyServingLeases>(), settings.PolicyDistribution.AccessToken(provider.GetRequiredService<ILogger<PolicyAccessToken>>()),
                provider.GetRequiredService<PrefOnlineMetrics>(), provider.GetRequiredService<ILoggerFactory>(), settings.Worker.PolicyBaseUrl));
            services.AddHostedService(provider => provider.GetRequiredService<PolicyServer>());
        }
        // Registration order is start order; stop order is the reverse: the demo's users and console stop
        // first (no new input; the report is written while the pipeline still runs), the pipeline last.
        services.AddHostedService(provider => provider.GetRequiredService<PipelineService>());

        var duration = settings.Worker.Duration is { } d && d > TimeSpan.Zero ? d
            : settings.Embedded && settings.Worker.Duration is null && settings.Demo.Duration > TimeSpan.Zero ? settings.Demo.Duration
            : (TimeSpan?)null;
        if (duration is { } runTime)
            services.AddHostedService(provider => new RunDurationService(runTime, provider.GetRequiredService<IHostApplicationLifetime>(), provider.GetRequiredService<ILogger<RunDurationService>>(), provider.GetRequiredService<TimeProvider>()));

        if (settings.Embedded) DemoServices.Add(services, settings);
        configureServices?.Invoke(services);

        var app = builder.Build();
        app.MapPrefOnlineObservability(); // nothing else on this port: the weights are served by the PolicyServer on its own
        return app;
    }

    /// <summary>The address Kestrel listens on (after start; useful with port 0).</summary>
    public static Uri Address(WebApplication app) => new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    private static LearnerPipeline CreateLearnerPipeline(IServiceProvider provider, WorkerSettings settings, IConfiguration configuration)
    {
        IInitialPolicySource? initial = !string.IsNullOrWhiteSpace(settings.Model.InitialPolicy)
            ? new DirectoryPolicySource(settings.Model.InitialPolicy)
            : settings.Embedded ? new DemoPolicySource(settings.Demo.Policy) : null;
        return new LearnerPipeline(settings.Worker.Role, settings.LearningState, settings.Feedback, settings.Checkpoints, settings.Guardrails, settings.InputValidation, settings.Kafka,
            provider.GetRequiredService<IStreamTransport>(), provider.GetRequiredService<TensorThread>(), initial,
            provider.GetRequiredService<PrefOnlineMetrics>(), provider.GetRequiredService<StreamingMetrics>(), provider.GetRequiredService<GuardrailHolder>(),
            provider.GetRequiredService<ReadinessGate>(), provider.GetRequiredService<PipelineStatus>(), ConfigHash(settings),
            provider.GetRequiredService<ILoggerFactory>(), provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<CheckpointReadiness>(), provider.GetRequiredService<PolicyServingLeases>(),
            provider.GetService<CheckpointIoPipeline>()?.Pipeline, provider.GetService<ServingHandOff>());
    }

    /// <summary>
    /// The hash of the effective settings that shape learning (defaults included), recorded in every
    /// checkpoint's manifest so a changed configuration is visible in <c>prefonline checkpoint list</c>.
    /// </summary>
    public static string ConfigHash(WorkerSettings settings)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new
        {
            settings.Model, settings.Generation, settings.Scoring, settings.Replay, settings.Learner, settings.Reward, settings.Guardrails,
        }, new System.Text.Json.JsonSerializerOptions { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } });
        return CheckpointConfigHash.Prefix + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(json)));
    }
}
