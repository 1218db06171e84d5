using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Worker.Guardrails;

/// <summary>Registers the worker's single <see cref="Guardrail"/> from the validated <c>Guardrails</c> section.</summary>
public static class GuardrailServiceCollectionExtensions
{
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">Root configuration.</param>
    /// <param name="initialGood">The <c>good</c> version found in the checkpoint store at start-up (null: none yet).</param>
    public static IServiceCollection AddPrefOnlineGuardrail(this IServiceCollection services, IConfiguration configuration, Func<IServiceProvider, long?>? initialGood = null)
    {
        services.AddOptions<GuardrailOptions>().Bind(configuration.GetSection(GuardrailOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GuardrailOptions>, GuardrailOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(provider => new Guardrail(
            provider.GetRequiredService<IOptions<GuardrailOptions>>().Value,
            provider.GetRequiredService<TimeProvider>(),
            initialGood?.Invoke(provider)));
        return services;
    }
}
