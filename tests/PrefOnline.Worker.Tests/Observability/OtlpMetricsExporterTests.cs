using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

/// <summary>
/// The optional OTLP push runs beside /metrics: an OpenTelemetry MeterProvider and the Prometheus
/// aggregator each listen to the PrefOnline meter. A fake OTLP/HTTP collector on 127.0.0.1 receives
/// the push while the scrape keeps reporting the same values.
/// </summary>
public sealed class OtlpMetricsExporterTests
{
    [Fact]
    public async Task OtlpPushesTheSameInstrumentsWhileTheScrapeKeepsWorking()
    {
        var received = new ConcurrentQueue<(string? ContentType, byte[] Body)>();
        var collectorBuilder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production", ContentRootPath = AppContext.BaseDirectory });
        collectorBuilder.Logging.ClearProviders();
        collectorBuilder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var collector = collectorBuilder.Build();
        collector.MapPost("/v1/metrics", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue((context.Request.ContentType, body.ToArray()));
            context.Response.ContentType = "application/x-protobuf";
        });
        await collector.StartAsync();
        var collectorAddress = collector.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

        await using var host = await ObservabilityTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Observability:Otlp:Enabled"] = "true",
            ["Observability:Otlp:Protocol"] = "HttpProtobuf",
            ["Observability:Otlp:Endpoint"] = collectorAddress + "/v1/metrics",
            ["Observability:Otlp:ExportInterval"] = "00:00:00.250",
        });
        Assert.True(host.Get<OtlpMetricsExporter>().Enabled);
        var metrics = host.Get<PrefOnlineMetrics>();
        for (var v = 1; v <= 3; v++) metrics.UpdateApplied(new UpdateReport(v, Loss: 0.1), TimeSpan.FromSeconds(1), DateTimeOffset.UtcNow);

        var name = Encoding.UTF8.GetBytes("prefonline_updates_total");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!received.Any(r => r.Body.AsSpan().IndexOf(name) >= 0))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no OTLP export carrying prefonline_updates_total within 60 s ({received.Count} requests received)");
            await Task.Delay(50);
        }
        Assert.All(received, r => Assert.Equal("application/x-protobuf", r.ContentType));
        Assert.Contains("prefonline_updates_total 3\n", await host.Client.GetStringAsync("/metrics"));
        await collector.StopAsync();
    }
}
