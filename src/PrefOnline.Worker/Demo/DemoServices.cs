using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Demo;

/// <summary>Registers the embedded demo's hosted services (after the pipeline, so they stop before it).</summary>
public static class DemoServices
{
    public static void Add(IServiceCollection services, WorkerSettings settings)
    {
        services.AddSingleton<DemoUsersService>();
        services.AddHostedService(provider => provider.GetRequiredService<DemoUsersService>());
        services.AddSingleton<DemoConsoleService>();
        services.AddHostedService(provider => provider.GetRequiredService<DemoConsoleService>());
    }
}
