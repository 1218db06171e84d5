using PrefOnline.Learning.Configuration;
using System.Text.RegularExpressions;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Serving;

/// <summary>What a serving publisher does with each version (docs/OPERATIONS.md, "Hand-off to the serving stack").</summary>
public enum ServingPublisherType
{
    /// <summary>Writes a Hugging Face directory per version and swaps a <c>current</c> pointer (for anything that watches a volume).</summary>
    Directory = 0,

    /// <summary>vLLM's runtime LoRA API: <c>POST /v1/load_lora_adapter</c> (needs a learner that writes adapters).</summary>
    Vllm = 1,

    /// <summary>SGLang: <c>POST /update_weights_from_disk</c> (full weights) or <c>POST /load_lora_adapter</c> (adapters).</summary>
    Sglang = 2,
}

/// <summary>
/// Configuration section <c>Serving</c>: the publishers that hand every published (and rolled-back-to) policy version to
/// the serving stack, in the background, idempotently, with bounded retries (<see cref="ServingHandOff"/>). Empty by
/// default: the policy event alone announces versions, as before. Cross-section rules (no publisher on a generator, vllm
/// only with a learner that writes adapters) are checked by <see cref="ConfigurationCheck"/>.
/// </summary>
public sealed class ServingOptions : IValidatedOptions
{
    public const string SectionName = "Serving";

    /// <summary>The publishers, each run after every published version and every rollback. Empty: none.</summary>
    public List<ServingPublisherOptions> Publishers { get; set; } = [];

    /// <summary>Attempts per version and publisher (the first included) before it is given up and counted as failed; a newer version ends them sooner.</summary>
    public int MaxAttempts { get; set; } = 6;

    /// <summary>Delay before the second attempt; doubles per attempt, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether /readyz fails while a publisher's last hand-off failed (rejected, or every attempt failed). True: the
    /// operator hears about it the way every other failure is heard; false: the check only reports it (a learner whose
    /// Service also serves /policy to generators stays in rotation).
    /// </summary>
    public bool FailReadinessOnError { get; set; } = true;

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(MaxAttempts), MaxAttempts, 1, 100);
        p.Duration(nameof(RetryBaseDelay), RetryBaseDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(10));
        p.Duration(nameof(RetryMaxDelay), RetryMaxDelay, RetryBaseDelay, TimeSpan.FromHours(1));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Publishers.Count; i++)
        {
            var publisher = Publishers[i];
            var key = $"{nameof(Publishers)}:{i}";
            if (publisher is null)
            {
                p.Add(key, $"is empty: give at least its Type and Directory");
                continue;
            }
            foreach (var problem in publisher.Problems()) p.Add($"{key}:{problem.Key}", $"{problem.Rule}");
            if (!names.Add(publisher.EffectiveName)) p.Add($"{key}:{nameof(ServingPublisherOptions.Name)}", $"'{publisher.EffectiveName}' names two publishers; give each a Name of its own");
        }
        return p.Items;
    }
}

/// <summary>One publisher of <c>Serving:Publishers</c>.</summary>
public sealed partial class ServingPublisherOptions
{
    /// <summary>Name in metrics (<c>publisher</c> label), logs and /readyz; default: the type (vllm, sglang, directory).</summary>
    public string? Name { get; set; }

    /// <summary>vllm, sglang or directory.</summary>
    public ServingPublisherType Type { get; set; } = ServingPublisherType.Directory;

    /// <summary>
    /// Where each version is written as a Hugging Face directory (<c>v000012/</c>, <c>current</c>, <c>current.json</c>), on
    /// the worker's file system: a volume the serving server mounts too, for vllm and sglang. Required.
    /// </summary>
    public string? Directory { get; set; }

    /// <summary>Versions kept in <see cref="Directory"/> besides the current one (older ones are deleted after each hand-off).</summary>
    public int KeepVersions { get; set; } = 3;

    /// <summary>vllm/sglang: the server's base URL, e.g. <c>http://vllm.ml.svc:8000</c>.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>
    /// vllm/sglang: <see cref="Directory"/> as the server sees it, when the shared volume is mounted elsewhere there
    /// (e.g. <c>/models/prefonline</c>); the paths sent are this prefix plus the version's directory name. Unset: the
    /// worker's absolute path.
    /// </summary>
    public string? ServerPath { get; set; }

    /// <summary>vllm/sglang: the stable adapter name every version is loaded under (clients request it as their model).</summary>
    public string AdapterName { get; set; } = "prefonline";

    /// <summary>
    /// vllm: replace the adapter in place (<c>"load_inplace": true</c>, in vLLM versions whose load request has that field) instead of unloading the
    /// previous version and loading the new one (which every version with runtime LoRA updating accepts).
    /// </summary>
    public bool LoadInplace { get; set; }

    /// <summary>sglang, full weights: abort the requests in flight instead of waiting for them (<c>abort_all_requests</c>).</summary>
    public bool AbortAllRequests { get; set; }

    /// <summary>vllm/sglang: file holding the bearer token the server expects (a mounted Secret; read before every hand-off, so rotation needs no restart). Never logged.</summary>
    public string? TokenFile { get; set; }

    /// <summary>vllm/sglang: name of an environment variable holding the bearer token (from a Secret), e.g. <c>VLLM_API_KEY</c>. At most one of the two. Never logged.</summary>
    public string? TokenVariable { get; set; }

    /// <summary>vllm/sglang: longest one request may take (loading full weights can take minutes).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The name used in metrics and /readyz.</summary>
    public string EffectiveName => string.IsNullOrWhiteSpace(Name) ? Type.ToString().ToLowerInvariant() : Name;

    public bool IsHttp => Type is ServingPublisherType.Vllm or ServingPublisherType.Sglang;

    /// <summary>The problems of this publisher as (key below the publisher, rule) pairs.</summary>
    public IEnumerable<(string Key, FormattableString Rule)> Problems()
    {
        if (!Enum.IsDefined(Type)) yield return (nameof(Type), $"must be vllm, sglang or directory (got {(int)Type})");
        if (Name is not null && !NamePattern().IsMatch(Name))
            yield return (nameof(Name), $"must be 1-40 letters, digits, '-' or '_' (it is a metric label; got '{Name}')");
        if (string.IsNullOrWhiteSpace(Directory) || Directory.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
            yield return (nameof(Directory), $"is required: the directory each version is written to (got '{Directory}')");
        if (KeepVersions is < 0 or > 1000) yield return (nameof(KeepVersions), $"must be between 0 and 1000 (got {KeepVersions})");
        if (!IsHttp)
        {
            foreach (var (key, set) in new (string, bool)[]
                     {
                         (nameof(BaseUrl), BaseUrl is not null), (nameof(ServerPath), ServerPath is not null), (nameof(TokenFile), TokenFile is not null),
                         (nameof(TokenVariable), TokenVariable is not null), (nameof(LoadInplace), LoadInplace), (nameof(AbortAllRequests), AbortAllRequests),
                     })
            {
                if (set) yield return (key, $"applies to vllm and sglang publishers only, not to {Type.ToString().ToLowerInvariant()}");
            }
            yield break;
        }
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(url.Query) || !string.IsNullOrEmpty(url.Fragment))
            yield return (nameof(BaseUrl), $"must be the server's absolute http:// or https:// URL, e.g. http://vllm.ml.svc:8000 (got '{BaseUrl}')");
        if (ServerPath is not null && (!ServerPath.StartsWith('/') || ServerPath.IndexOfAny(Path.GetInvalidPathChars()) >= 0))
            yield return (nameof(ServerPath), $"must be an absolute path as the server sees the directory, e.g. /models/prefonline (got '{ServerPath}')");
        if (!AdapterNamePattern().IsMatch(AdapterName ?? ""))
            yield return (nameof(AdapterName), $"must be 1-64 letters, digits, '-', '_' or '.' (clients send it as their model name; got '{AdapterName}')");
        if (LoadInplace && Type != ServingPublisherType.Vllm) yield return (nameof(LoadInplace), $"applies to vllm publishers only");
        if (AbortAllRequests && Type != ServingPublisherType.Sglang) yield return (nameof(AbortAllRequests), $"applies to sglang publishers only");
        if (!string.IsNullOrWhiteSpace(TokenFile) && !string.IsNullOrWhiteSpace(TokenVariable))
            yield return (nameof(TokenVariable), $"and {nameof(TokenFile)} are both set; give the token one way only");
        if (ServingToken.From(this) is { } token && token.Problem() is { } problem)
            yield return (!string.IsNullOrWhiteSpace(TokenFile) ? nameof(TokenFile) : nameof(TokenVariable), $"{problem}");
        if (Timeout < TimeSpan.FromSeconds(1) || Timeout > TimeSpan.FromHours(1))
            yield return (nameof(Timeout), $"must be between 00:00:01 and 01:00:00 (got {Timeout:c})");
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,40}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex AdapterNamePattern();
}
