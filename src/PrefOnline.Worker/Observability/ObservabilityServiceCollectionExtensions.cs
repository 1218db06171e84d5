using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Tensors;
using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Wiring for the host. Typical use:
/// <code>
/// builder.Services.AddPrefOnlineObservability(builder.Configuration);
/// builder.Services.AddTensorThreadLiveness();              // where a TensorThread is registered
/// builder.Services.AddGuardrailReadiness();                // learner roles, where a Guardrail is registered
/// builder.Services.AddSingleton&lt;IReadinessContributor&gt;(modelGate); // ReadinessGate("model", "policy not loaded yet")
/// builder.UsePrefOnlineObservabilityPort();
/// var app = builder.Build();
/// app.MapPrefOnlineObservability();
/// </code>
/// </summary>
public static class ObservabilityServiceCollectionExtensions
{
    public static IServiceCollection AddPrefOnlineObservability(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ObservabilityOptions>().Bind(configuration.GetSection(ObservabilityOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ObservabilityOptions>, ObservabilityOptionsValidator>());
        services.AddMetrics();
        services.TryAddSingleton(_ => new PrometheusExporter());
        services.TryAddSingleton<OtlpMetricsExporter>();
        // The exporters must be listening before the first measurement: a synchronous gauge recorded
        // before a listener exists is lost to it. Resolving them here makes that order unbreakable.
        services.TryAddSingleton(provider =>
        {
            provider.GetRequiredService<PrometheusExporter>();
            provider.GetRequiredService<OtlpMetricsExporter>();
            return new PrefOnlineMetrics(provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        services.TryAddSingleton<HealthService>();
        services.AddHostedService<ReadinessMonitor>();
        return services;
    }

    /// <summary>/healthz pings the registered <see cref="TensorThread"/> (timings from <see cref="ObservabilityOptions"/>).</summary>
    public static IServiceCollection AddTensorThreadLiveness(this IServiceCollection services)
    {
        services.AddSingleton<ILivenessProbe>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<ObservabilityOptions>>().Value;
            return new TensorThreadLivenessProbe(provider.GetRequiredService<TensorThread>(), options.TensorThreadAnswerWait, options.TensorThreadStallTimeout);
        });
        return services;
    }

    /// <summary>/readyz fails while the registered <see cref="Guardrail"/> pauses updates; its metrics are exported.</summary>
    public static IServiceCollection AddGuardrailReadiness(this IServiceCollection services)
    {
        services.AddSingleton<IReadinessContributor>(provider =>
        {
            var guardrail = provider.GetRequiredService<Guardrail>();
            provider.GetRequiredService<PrefOnlineMetrics>().AttachGuardrail(guardrail);
            return new GuardrailReadinessContributor(guardrail);
        });
        return services;
    }

    /// <summary>Kestrel listens on <see cref="ObservabilityOptions.BindAddress"/>:<see cref="ObservabilityOptions.Port"/> (validated at start).</summary>
    public static WebApplicationBuilder UsePrefOnlineObservabilityPort(this WebApplicationBuilder builder)
    {
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = new ObservabilityOptions();
            context.Configuration.GetSection(ObservabilityOptions.SectionName).Bind(options);
            var validation = new ObservabilityOptionsValidator().Validate(null, options);
            if (validation.Failed) throw new OptionsValidationException(ObservabilityOptions.SectionName, typeof(ObservabilityOptions), validation.Failures);
            kestrel.Listen(IPAddress.Parse(options.BindAddress), options.Port);
        });
        return builder;
    }
}
