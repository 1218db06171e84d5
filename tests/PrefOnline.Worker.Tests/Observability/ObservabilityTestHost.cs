using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

/// <summary>
/// A real Kestrel host on 127.0.0.1 with a free port, wired exactly as the worker wires observability
/// (TestServer is not available here). Its exporter only sees this host's meters.
/// </summary>
internal sealed class ObservabilityTestHost : IAsyncDisposable
{
    private ObservabilityTestHost(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    public HttpClient Client { get; }

    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public static async Task<ObservabilityTestHost> StartAsync(IDictionary<string, string?>? settings = null, Action<IServiceCollection, IConfiguration>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production", ContentRootPath = AppContext.BaseDirectory });
        var config = new Dictionary<string, string?>
        {
            ["Observability:Port"] = "0",
            ["Observability:BindAddress"] = "127.0.0.1",
            ["Observability:ReadinessInterval"] = "00:00:00.200",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) config[key] = value;
        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(provider =>
        {
            var factory = provider.GetRequiredService<IMeterFactory>();
            return new PrometheusExporter(new PrometheusExporterOptions { MeterFilter = meter => ReferenceEquals(meter.Scope, factory) });
        });
        configure?.Invoke(builder.Services, builder.Configuration);
        builder.Services.AddPrefOnlineObservability(builder.Configuration);
        builder.UsePrefOnlineObservabilityPort();
        var app = builder.Build();
        app.MapPrefOnlineObservability();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new ObservabilityTestHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
