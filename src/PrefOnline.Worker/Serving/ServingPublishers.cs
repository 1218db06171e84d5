using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace PrefOnline.Worker.Serving;

/// <summary>
/// One publisher of <c>Serving:Publishers</c>: makes one announced version what its target serves. Called by
/// <see cref="ServingHandOff"/> (one call at a time per publisher, retried on transient failures), it must be idempotent:
/// handing the same version off twice leaves the target as after once.
/// </summary>
public interface IServingPublisher
{
    string Name { get; }

    ServingPublisherType Type { get; }

    /// <summary>Hands <paramref name="version"/> off; returns a line for logs and /readyz. Failures: <see cref="ServingHandOffException"/>.</summary>
    Task<string> PublishAsync(ServedVersion version, CancellationToken cancellationToken);
}

/// <summary>The publishers of a configuration: one exporter per export root, shared by the publishers writing there.</summary>
public static class ServingPublishers
{
    public static IReadOnlyList<IServingPublisher> Create(ServingOptions options, ILoggerFactory loggers, HttpMessageHandler? handler = null)
    {
        var exporters = new Dictionary<string, VersionExporter>(StringComparer.Ordinal);
        var publishers = new List<IServingPublisher>();
        foreach (var publisher in options.Publishers)
        {
            var root = Path.GetFullPath(publisher.Directory!);
            if (!exporters.TryGetValue(root, out var exporter))
                exporters[root] = exporter = new VersionExporter(root, publisher.KeepVersions, loggers.CreateLogger<VersionExporter>());
            publishers.Add(publisher.Type switch
            {
                ServingPublisherType.Directory => new DirectoryServingPublisher(publisher.EffectiveName, exporter),
                ServingPublisherType.Vllm => new VllmServingPublisher(publisher, exporter, handler, loggers.CreateLogger<VllmServingPublisher>()),
                ServingPublisherType.Sglang => new SglangServingPublisher(publisher, exporter, handler, loggers.CreateLogger<SglangServingPublisher>()),
                _ => throw new ArgumentOutOfRangeException(nameof(options), publisher.Type, "unknown publisher type"),
            });
        }
        return publishers;
    }
}

/// <summary><c>directory</c>: the version's Hugging Face directory and the <c>current</c> pointer are the hand-off.</summary>
public sealed class DirectoryServingPublisher(string name, VersionExporter exporter) : IServingPublisher
{
    public string Name { get; } = name;

    public ServingPublisherType Type => ServingPublisherType.Directory;

    public async Task<string> PublishAsync(ServedVersion version, CancellationToken cancellationToken)
    {
        var export = await exporter.ExportAsync(version, cancellationToken).ConfigureAwait(false);
        return $"{export.Path} is current";
    }
}

/// <summary>
/// What vllm and sglang publishers share: the export the server reads (<see cref="VersionExporter"/>), the path the server
/// sees (<c>ServerPath</c> + the version's directory name), JSON POSTs with an optional bearer token and a timeout, and the
/// classification of failures (connection errors, timeouts, 5xx, 408 and 429 are retried; any other 4xx is not).
/// </summary>
public abstract class HttpServingPublisher : IServingPublisher, IDisposable
{
    private const int ShownBodyCharacters = 300;

    private readonly HttpClient http;
    private readonly ServingToken? token;
    private readonly string serverRoot;

    protected HttpServingPublisher(ServingPublisherOptions options, VersionExporter exporter, HttpMessageHandler? handler, ILogger logger)
    {
        Name = options.EffectiveName;
        Options = options;
        Exporter = exporter;
        Logger = logger;
        token = ServingToken.From(options);
        serverRoot = (options.ServerPath ?? exporter.Root).TrimEnd('/');
        http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.BaseAddress = new Uri(options.BaseUrl!.TrimEnd('/') + "/");
        http.Timeout = Timeout.InfiniteTimeSpan; // per request below, so a timeout is told apart from a stop
    }

    public string Name { get; }

    public abstract ServingPublisherType Type { get; }

    protected ServingPublisherOptions Options { get; }

    protected VersionExporter Exporter { get; }

    protected ILogger Logger { get; }

    public abstract Task<string> PublishAsync(ServedVersion version, CancellationToken cancellationToken);

    /// <summary>Where the server finds <paramref name="export"/> (its mount of the shared volume).</summary>
    protected string ServerPathOf(VersionExport export) => serverRoot + "/" + export.DirectoryName;

    /// <summary>
    /// POSTs <paramref name="body"/> as JSON to <paramref name="path"/> (relative to the base URL). Returns the status and
    /// the response text when the status is 2xx or in <paramref name="accepted"/>; throws <see cref="ServingHandOffException"/> otherwise.
    /// </summary>
    protected async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, JsonObject body, CancellationToken cancellationToken, params HttpStatusCode[] accepted)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path.TrimStart('/'))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (token is not null)
        {
            string bearer;
            try
            {
                bearer = token.Current();
            }
            catch (InvalidOperationException e)
            {
                throw new ServingHandOffException(e.Message, transient: true, e);
            }
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Options.Timeout);
        HttpResponseMessage response;
        string text;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false);
            text = await response.Content.ReadAsStringAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ServingHandOffException($"POST {path} got no answer within {Options.Timeout:c}", transient: true, e);
        }
        catch (HttpRequestException e)
        {
            throw new ServingHandOffException($"POST {path} failed: {e.Message}", transient: true, e);
        }
        using (response)
        {
            var status = response.StatusCode;
            if (response.IsSuccessStatusCode || accepted.Contains(status)) return (status, text);
            var code = (int)status;
            var transient = code >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
            throw new ServingHandOffException($"POST {path} answered {code} {response.ReasonPhrase}: {Shown(text)}", transient);
        }
    }

    protected static string Shown(string text)
    {
        var flat = text.ReplaceLineEndings(" ").Trim();
        return flat.Length <= ShownBodyCharacters ? flat : flat[..ShownBodyCharacters] + "…";
    }

    public void Dispose()
    {
        http.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// <c>vllm</c>: loads each version's LoRA adapter under one stable name through vLLM's runtime LoRA API (the server runs
/// with <c>--enable-lora</c> and <c>VLLM_ALLOW_RUNTIME_LORA_UPDATING=True</c>):
/// <c>POST /v1/unload_lora_adapter {"lora_name"}</c> (404: it was not loaded, fine), then
/// <c>POST /v1/load_lora_adapter {"lora_name","lora_path"}</c>; with <c>LoadInplace</c> a single load with
/// <c>"load_inplace": true</c>, which vLLM versions that know the field use to replace an adapter of the same name. vLLM
/// refuses to load a name that is loaded already (400), hence the unload.
/// </summary>
public sealed class VllmServingPublisher(ServingPublisherOptions options, VersionExporter exporter, HttpMessageHandler? handler, ILogger logger)
    : HttpServingPublisher(options, exporter, handler, logger)
{
    public const string LoadPath = "/v1/load_lora_adapter";
    public const string UnloadPath = "/v1/unload_lora_adapter";

    public override ServingPublisherType Type => ServingPublisherType.Vllm;

    public override async Task<string> PublishAsync(ServedVersion version, CancellationToken cancellationToken)
    {
        var export = await Exporter.ExportAsync(version, cancellationToken).ConfigureAwait(false);
        if (export.Kind != ServingExportKind.Adapter)
            throw new ServingHandOffException($"{version} holds full weights; vLLM's runtime API loads LoRA adapters only (use an sglang or directory publisher for full fine-tuning)", transient: false);
        var path = ServerPathOf(export);
        var load = new JsonObject { ["lora_name"] = Options.AdapterName, ["lora_path"] = path };
        if (Options.LoadInplace)
        {
            load["load_inplace"] = true;
        }
        else
        {
            var (status, _) = await PostAsync(UnloadPath, new JsonObject { ["lora_name"] = Options.AdapterName }, cancellationToken, HttpStatusCode.NotFound).ConfigureAwait(false);
            if (status == HttpStatusCode.NotFound) Logger.LogDebug("vLLM {Publisher}: adapter {Adapter} was not loaded", Name, Options.AdapterName);
        }
        await PostAsync(LoadPath, load, cancellationToken).ConfigureAwait(false);
        return $"adapter '{Options.AdapterName}' loaded from {path}";
    }
}

/// <summary>
/// <c>sglang</c>: full weights through <c>POST /update_weights_from_disk {"model_path","abort_all_requests","weight_version"}</c>
/// (the server reloads its model from the version's directory; <c>weight_version</c> is the policy version, which
/// <c>GET /get_weight_version</c> then reports), or an adapter through <c>POST /unload_lora_adapter {"lora_name"}</c> and
/// <c>POST /load_lora_adapter {"lora_name","lora_path"}</c>. SGLang answers <c>{"success": bool, "message": …}</c>; a
/// <c>success: false</c> is a failure whatever the status code.
/// </summary>
public sealed class SglangServingPublisher(ServingPublisherOptions options, VersionExporter exporter, HttpMessageHandler? handler, ILogger logger)
    : HttpServingPublisher(options, exporter, handler, logger)
{
    public const string UpdateWeightsPath = "/update_weights_from_disk";
    public const string LoadAdapterPath = "/load_lora_adapter";
    public const string UnloadAdapterPath = "/unload_lora_adapter";

    public override ServingPublisherType Type => ServingPublisherType.Sglang;

    public override async Task<string> PublishAsync(ServedVersion version, CancellationToken cancellationToken)
    {
        var export = await Exporter.ExportAsync(version, cancellationToken).ConfigureAwait(false);
        var path = ServerPathOf(export);
        if (export.Kind == ServingExportKind.Full)
        {
            var (_, body) = await PostAsync(UpdateWeightsPath, new JsonObject
            {
                ["model_path"] = path,
                ["abort_all_requests"] = Options.AbortAllRequests,
                ["weight_version"] = version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }, cancellationToken).ConfigureAwait(false);
            RequireSuccess(UpdateWeightsPath, body);
            return $"weights reloaded from {path}";
        }
        // Not loaded (the first version, a restarted server) is no failure: the load below says whether the name is free.
        await PostAsync(UnloadAdapterPath, new JsonObject { ["lora_name"] = Options.AdapterName }, cancellationToken, HttpStatusCode.BadRequest, HttpStatusCode.NotFound).ConfigureAwait(false);
        var (_, loaded) = await PostAsync(LoadAdapterPath, new JsonObject { ["lora_name"] = Options.AdapterName, ["lora_path"] = path }, cancellationToken).ConfigureAwait(false);
        RequireSuccess(LoadAdapterPath, loaded);
        return $"adapter '{Options.AdapterName}' loaded from {path}";
    }

    /// <summary>SGLang's <c>{"success": false, "message": …}</c> (some builds answer it with 200) is a refusal.</summary>
    private static void RequireSuccess(string path, string body)
    {
        JsonNode? json;
        try
        {
            json = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            return; // not JSON: the 2xx status is all there is to go by
        }
        if (json is JsonObject o && o["success"] is JsonValue success && success.TryGetValue<bool>(out var ok) && !ok)
        {
            var message = o["message"]?.ToString() ?? o["error_message"]?.ToString() ?? Shown(body);
            throw new ServingHandOffException($"POST {path} answered success=false: {Shown(message)}", transient: false);
        }
    }
}
