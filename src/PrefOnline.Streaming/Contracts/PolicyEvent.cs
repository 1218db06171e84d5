namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// <c>prefonline.policy.v1</c> (topic <c>prefonline.policy</c>): which policy version serving should use.
/// </summary>
/// <remarks>
/// Publish (a new version passed the guardrails):
/// <code>{"schema":"prefonline.policy.v1","kind":"publish","version":12,"uri":"file:///ckpt/v000012","sha256":"…64 hex…","created":"2024-05-01T12:00:00.000Z","metrics":{"reward":0.61,"kl":0.8}}</code>
/// Rollback (the current version was withdrawn; serve an older one again):
/// <code>{"schema":"prefonline.policy.v1","kind":"rollback","version":11,"from_version":12,"reason":"kl budget exceeded","uri":"file:///ckpt/v000011","sha256":"…","created":"…","metrics":{}}</code>
/// In both kinds <c>version</c>/<c>uri</c>/<c>sha256</c> name the policy to serve NOW, so a consumer that ignores
/// <c>kind</c> still loads the right weights. <c>kind</c> may be absent (= publish). <c>from_version</c> and
/// <c>reason</c> exist only on rollbacks, where <c>from_version</c> &gt; <c>version</c>.
/// <para>Optional <c>files</c> (added compatibly to v1): the SHA-256 of every file that makes up the policy, by
/// plain file name — the weights the uri names and the tokenizer files beside them — so a consumer can verify each
/// before it loads anything: <c>"files":{"policy.safetensors":"…","tokenizer_config.json":"…"}</c>. PrefOnline's
/// learner always sends it and its generators refuse an event without it (src/PrefOnline.Streaming/README.md).</para>
/// </remarks>
public sealed record PolicyEvent : StreamRecord
{
    private static readonly IReadOnlyDictionary<string, string> NoFiles = new Dictionary<string, string>(StringComparer.Ordinal);

    private PolicyEvent(PolicyEventKind kind, long version, string uri, string sha256, DateTimeOffset created, IReadOnlyDictionary<string, double> metrics, long? fromVersion, string? reason,
                        IReadOnlyDictionary<string, string>? files)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(sha256);
        ArgumentNullException.ThrowIfNull(metrics);
        if (!ContractRules.IsAbsoluteUri(uri)) throw new ArgumentException($"uri must be an absolute URI of at most {ContractRules.MaxUriLength} characters", nameof(uri));
        if (!ContractRules.IsSha256Hex(sha256)) throw new ArgumentException("sha256 must be 64 hexadecimal characters", nameof(sha256));
        foreach (var (name, value) in metrics)
        {
            if (string.IsNullOrEmpty(name) || !ContractRules.IsValidUtf16(name)) throw new ArgumentException("metric names must be non-empty valid text", nameof(metrics));
            ContractRules.RequireFinite(value, $"metrics[{name}]");
        }
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, hash) in files ?? NoFiles)
        {
            if (ContractRules.CheckFileName(name) is { } problem) throw new ArgumentException($"files: the name '{name}' {problem}", nameof(files));
            if (hash is null || !ContractRules.IsSha256Hex(hash)) throw new ArgumentException($"files[{name}] must be 64 hexadecimal characters", nameof(files));
            hashes[name] = hash.ToLowerInvariant();
        }
        if (hashes.Count > ContractRules.MaxPolicyFiles) throw new ArgumentException($"files lists {hashes.Count} files; at most {ContractRules.MaxPolicyFiles}", nameof(files));
        Kind = kind;
        Version = version;
        Uri = uri;
        Sha256 = sha256.ToLowerInvariant();
        Created = created.ToUniversalTime();
        Metrics = metrics;
        FromVersion = fromVersion;
        Reason = reason;
        Files = hashes;
    }

    public override string Schema => SchemaNames.PolicyV1;

    public PolicyEventKind Kind { get; }

    /// <summary>The version to serve now (&gt;= 1).</summary>
    public long Version { get; }

    /// <summary>Where the weights are (absolute URI, e.g. <c>file:///…/v000012</c>).</summary>
    public string Uri { get; }

    /// <summary>SHA-256 of the policy weights file, lowercase hex.</summary>
    public string Sha256 { get; }

    /// <summary>When the version was created (UTC).</summary>
    public DateTimeOffset Created { get; }

    /// <summary>Finite numeric metrics of the version (e.g. reward, kl); may be empty.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; }

    /// <summary>
    /// File name → SHA-256 (lowercase hex) of every file of the policy: the weights <see cref="Uri"/> names and the tokenizer
    /// files beside them. Empty when the publisher sent none (an event from before the field existed).
    /// </summary>
    public IReadOnlyDictionary<string, string> Files { get; }

    /// <summary>Rollback only: the withdrawn version (&gt; <see cref="Version"/>).</summary>
    public long? FromVersion { get; }

    /// <summary>Rollback only: why (human text, e.g. the guardrail that fired).</summary>
    public string? Reason { get; }

    /// <param name="files">File name → SHA-256 of every file of the policy (see <see cref="Files"/>); null or empty: none listed.</param>
    public static PolicyEvent Publish(long version, string uri, string sha256, DateTimeOffset created, IReadOnlyDictionary<string, double> metrics,
                                      IReadOnlyDictionary<string, string>? files = null) =>
        new(PolicyEventKind.Publish, version, uri, sha256, created, metrics, null, null, files);

    /// <param name="files">File name → SHA-256 of every file of the policy (see <see cref="Files"/>); null or empty: none listed.</param>
    public static PolicyEvent Rollback(long fromVersion, long toVersion, string reason, string uri, string sha256, DateTimeOffset created, IReadOnlyDictionary<string, double> metrics,
                                       IReadOnlyDictionary<string, string>? files = null)
    {
        if (fromVersion <= toVersion) throw new ArgumentException($"a rollback goes back: from_version ({fromVersion}) must be greater than version ({toVersion})", nameof(fromVersion));
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return new PolicyEvent(PolicyEventKind.Rollback, toVersion, uri, sha256, created, metrics, fromVersion, reason, files);
    }
}
