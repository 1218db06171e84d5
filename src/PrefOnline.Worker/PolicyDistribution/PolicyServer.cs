using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// The learner's /policy surface: a server of its own (its own Kestrel on <c>PolicyDistribution:Port</c>), so neither its
/// traffic nor its limits touch /metrics and the probes, and nothing but policy files is reachable on it. Every request
/// passes, in this order: a rate limit per client address (a token bucket, 429 with Retry-After), the bearer token
/// (<see cref="PolicyAccessToken"/>, compared in constant time; 401 with <c>WWW-Authenticate: Bearer</c>), then
/// <see cref="PolicyFileEndpoints"/> (current lineage only). Kestrel closes connections beyond
/// <c>PolicyDistribution:MaxConnections</c>, drops idle ones after 15 s and slow headers after 10 s, and takes no request
/// bodies. Without a token (the embedded demo on 127.0.0.1, or <c>PolicyDistribution:AllowUnauthenticated</c>) it says so
/// at start. Every answer is counted in <c>prefonline_policy_requests_total{result}</c>; requests without a valid token are
/// also logged, at most one line a minute.
/// </summary>
public sealed class PolicyServer(
    PolicyDistributionOptions options,
    ServedLineage lineage,
    PolicyServingLeases leases,
    PolicyAccessToken? token,
    PrefOnlineMetrics metrics,
    ILoggerFactory loggers,
    string? policyBaseUrl) : IHostedService, IAsyncDisposable
{
    /// <summary>The realm named in <c>WWW-Authenticate</c>.</summary>
    public const string Realm = "prefonline-policy";

    private static readonly TimeSpan RefusalLogInterval = TimeSpan.FromMinutes(1);

    private readonly ILogger logger = loggers.CreateLogger<PolicyServer>();
    private readonly Lock refusalGate = new();
    private WebApplication? app;
    private long refusalsSinceLog;
    private DateTimeOffset lastRefusalLog = DateTimeOffset.MinValue;

    /// <summary>Where the surface listens, once started (the real port when configured as 0).</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory, EnvironmentName = Environments.Production });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers); // the worker's loggers: Kestrel's refusals appear in its log
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.Limits.MaxConcurrentUpgradedConnections = 0;
            kestrel.Limits.MaxRequestBodySize = 0; // GET only
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(15);
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            kestrel.Listen(IPAddress.Parse(options.BindAddress), options.Port, listen => listen.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context => RateLimitPartition.GetTokenBucketLimiter(
                context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.RequestBurst,
                    TokensPerPeriod = options.RequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
            limiter.OnRejected = (context, _) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = "1";
                return ValueTask.CompletedTask;
            };
        });

        var server = builder.Build();
        server.Use(async (context, next) =>
        {
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                metrics.PolicyRequestAnswered(context.Response.StatusCode);
            }
        });
        server.UseRateLimiter();
        if (token is not null) server.Use(RequireTokenAsync);
        server.MapPolicyFiles(lineage, leases);
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        app = server;
        Address = new Uri(server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        LogStart();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (app is not null) await app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (app is not null) await app.DisposeAsync().ConfigureAwait(false);
        app = null;
    }

    private async Task RequireTokenAsync(HttpContext context, RequestDelegate next)
    {
        const string scheme = "Bearer ";
        var header = context.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
        if (token!.Matches(presented))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.WWWAuthenticate = presented is null ? $"Bearer realm=\"{Realm}\"" : $"Bearer realm=\"{Realm}\", error=\"invalid_token\"";
        NoteRefusal(context.Connection.RemoteIpAddress, presented is not null);
    }

    /// <summary>Logs refused requests at most once per <see cref="RefusalLogInterval"/> (a flood must not flood the log); the metric counts each.</summary>
    private void NoteRefusal(IPAddress? from, bool wrongToken)
    {
        long count;
        lock (refusalGate)
        {
            refusalsSinceLog++;
            var now = DateTimeOffset.UtcNow;
            if (now - lastRefusalLog < RefusalLogInterval) return;
            count = refusalsSinceLog;
            refusalsSinceLog = 0;
            lastRefusalLog = now;
        }
        logger.LogWarning("Refused {Count} request(s) to the policy port without a valid bearer token since the last such line; the latest from {Address} ({What})",
            count, from?.ToString() ?? "?", wrongToken ? "a wrong token" : "no token");
    }

    private void LogStart()
    {
        var where = $"{Address!.AbsoluteUri.TrimEnd('/')}{PolicyFiles.RoutePrefix}/{{version}}/{{file}}";
        if (token is not null)
        {
            logger.LogInformation("Serving policy files on {Where} to bearer-token holders only (at most {Connections} connections, {Rate} requests/s and bursts of {Burst} per client address)",
                where, options.MaxConnections, options.RequestsPerSecond, options.RequestBurst);
        }
        else if (options.BindsLoopback)
        {
            logger.LogWarning("Serving policy files on {Where} WITHOUT authentication, to this machine only (loopback); set PolicyDistribution:TokenFile to require a token", where);
        }
        else
        {
            logger.LogWarning("Serving policy files on {Where} WITHOUT authentication (PolicyDistribution:AllowUnauthenticated is true): anyone who can reach this port can download the weights of every current version", where);
        }
        if (options.BindsLoopback && Uri.TryCreate(policyBaseUrl, UriKind.Absolute, out var published) && !published.IsLoopback)
        {
            logger.LogWarning("PolicyDistribution:BindAddress is {Bind}, but Worker:PolicyBaseUrl names {Host}: generators on other machines cannot fetch policies; bind 0.0.0.0 in a container",
                options.BindAddress, published.Host);
        }
    }
}
