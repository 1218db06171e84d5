using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>Host wiring for the checkpoint settings.</summary>
public static class CheckpointServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="CheckpointOptions"/> to the <c>Checkpoints</c> section and validates it when the host
    /// starts (ValidateOnStart), so a bad setting stops start-up with one line per problem.
    /// </summary>
    public static IServiceCollection AddCheckpointOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CheckpointOptions>()
            .Bind(configuration.GetSection(CheckpointOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CheckpointOptions>, CheckpointOptionsValidator>());
        return services;
    }
}
