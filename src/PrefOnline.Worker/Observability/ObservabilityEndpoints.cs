using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Maps <c>GET /metrics</c> (Prometheus text 0.0.4, written by prometheus-net: <see cref="PrometheusExporter"/>), <c>GET /healthz</c> (liveness) and
/// <c>GET /readyz</c> (readiness). Health answers 200 or 503 with a JSON body naming every check and
/// its reason. Needs <see cref="ObservabilityServiceCollectionExtensions.AddPrefOnlineObservability"/>.
/// </summary>
public static class ObservabilityEndpoints
{
    public const string MetricsPath = "/metrics";
    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";

    public static IEndpointRouteBuilder MapPrefOnlineObservability(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(MetricsPath, async (HttpContext context, PrometheusExporter exporter) =>
        {
            context.Response.ContentType = PrometheusExporter.ContentType;
            context.Response.Headers.CacheControl = "no-store";
            await exporter.WriteAsync(context.Response.Body, context.RequestAborted);
        });
        endpoints.MapGet(LivenessPath, async (HttpContext context, HealthService health) =>
            await WriteAsync(context, await health.CheckLivenessAsync(context.RequestAborted)));
        endpoints.MapGet(ReadinessPath, async (HttpContext context, HealthService health) =>
            await WriteAsync(context, await health.CheckReadinessAsync(context.RequestAborted)));
        return endpoints;
    }

    private static async Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.StatusCode = report.Healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(report.ToJson(), Encoding.UTF8, context.RequestAborted);
    }
}
