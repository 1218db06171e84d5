using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PrefOnline.Worker.Tests.Serving;

/// <summary>
/// A stand-in for vLLM's or SGLang's admin API on 127.0.0.1 (Kestrel, a free port or the one given): records every request
/// as the server receives it (method, path, Authorization and Content-Type headers, JSON body) and answers what
/// <see cref="Respond"/> says — by default what the real servers answer on success.
/// </summary>
internal sealed class FakeServingServer : IAsyncDisposable
{
    public sealed record Request(string Method, string Path, string? Authorization, string? ContentType, JsonObject Body)
    {
        public string? Field(string name) => Body[name]?.ToJsonString().Trim('"');
    }

    private readonly WebApplication app;
    private readonly ConcurrentQueue<Request> requests = new();

    private FakeServingServer(WebApplication app)
    {
        this.app = app;
    }

    /// <summary>Status and JSON body for a request; the default is success as vLLM and SGLang answer it.</summary>
    public Func<Request, (int Status, string Body)> Respond { get; set; } = Success;

    public Uri Address => new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    public IReadOnlyList<Request> Requests => requests.ToArray();

    public static (int Status, string Body) Success(Request request) => request.Path switch
    {
        "/update_weights_from_disk" => (200, """{"success": true, "message": "Succeeded to update model weights.", "num_paused_requests": 0}"""),
        "/load_lora_adapter" or "/unload_lora_adapter" => (200, """{"success": true, "error_message": null, "loaded_adapters": {}}"""),
        _ => (200, $"\"Success: LoRA adapter '{request.Field("lora_name")}' added successfully.\""),
    };

    public static async Task<FakeServingServer> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var server = new FakeServingServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        return server;
    }

    /// <summary>Waits until <paramref name="condition"/> holds for the requests so far.</summary>
    public async Task WaitForAsync(Func<IReadOnlyList<Request>, bool> condition, string what, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (!condition(Requests))
        {
            if (deadline.IsCancellationRequested) throw new TimeoutException($"{what}: not seen; requests: {string.Join(" | ", Requests.Select(r => $"{r.Method} {r.Path} {r.Body.ToJsonString()}"))}");
            await Task.Delay(20, CancellationToken.None);
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var text = await reader.ReadToEndAsync();
        var body = JsonNode.Parse(text.Length == 0 ? "{}" : text) as JsonObject ?? [];
        var request = new Request(context.Request.Method, context.Request.Path.Value ?? "", context.Request.Headers.Authorization.FirstOrDefault(),
            context.Request.ContentType, body);
        requests.Enqueue(request);
        var (status, answer) = Respond(request);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer);
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
