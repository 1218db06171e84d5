using PrefOnline.Learning.Configuration;
using System.Net;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Configuration section <c>PolicyDistribution</c>: how a learner serves the policies it publishes (its own port,
/// separate from /metrics and the probes, behind a bearer token, a connection limit and a rate limit) and how a
/// generator fetches them (the same token, a size cap, a directory on the data volume). Cross-role rules (a token is
/// required wherever <c>Worker:PolicyBaseUrl</c> is used) are checked at start by <see cref="ConfigurationCheck"/>.
/// The threat model is in docs/OPERATIONS.md, "Security".
/// </summary>
public sealed class PolicyDistributionOptions : IValidatedOptions
{
    public const string SectionName = "PolicyDistribution";

    /// <summary>Shortest token accepted: a guessable token protects nothing.</summary>
    public const int MinTokenLength = 16;

    /// <summary>TCP port of the learner's /policy endpoint (its own port, never the metrics port). 0 picks a free port (tests).</summary>
    public int Port { get; set; } = 8081;

    /// <summary>Address the /policy port binds: 127.0.0.1 (default: this machine only), 0.0.0.0 in a container (the chart sets it).</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// File holding the bearer token (a mounted Kubernetes Secret; surrounding whitespace ignored). The learner accepts
    /// only requests that carry it (<c>Authorization: Bearer …</c>), generators send it. Read again when it changes
    /// (within 10 s), so a rotated Secret needs no restart. Never logged.
    /// </summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// The bearer token itself, for an environment variable from a Secret (<c>PREFONLINE__PolicyDistribution__Token</c>);
    /// prefer <see cref="TokenFile"/>. At most one of the two. Never logged.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// Serve (learner) or fetch (generator) policies without a token on a non-loopback address. Default false: a
    /// learner that serves policies on a non-loopback address, or a generator that fetches them, refuses to start
    /// without a token. True: anyone who reaches the port can download every served version's weights.
    /// </summary>
    public bool AllowUnauthenticated { get; set; }

    /// <summary>Most simultaneous connections to the /policy port; more are closed at once (Kestrel's limit on that port only, never the probes').</summary>
    public int MaxConnections { get; set; } = 16;

    /// <summary>Requests per second one client address may make to the /policy port (a token bucket, refilled every second); more answer 429.</summary>
    public int RequestsPerSecond { get; set; } = 10;

    /// <summary>Requests one client address may make at once before the per-second rate applies (the bucket's size).</summary>
    public int RequestBurst { get; set; } = 30;

    /// <summary>
    /// Generator: where downloaded policies land (a directory of its own on the data volume; the chart mounts an emptyDir
    /// with a size limit there). It holds the version in use and the one being fetched. Relative paths are taken from the
    /// working directory.
    /// </summary>
    public string DownloadDirectory { get; set; } = "policy-downloads";

    /// <summary>
    /// Generator: largest policy accepted, in bytes, the weights and tokenizer files together (default 4 GiB: GPT-2 large in
    /// float32 fits); a bigger one is refused before or while it arrives. The download directory needs twice this.
    /// </summary>
    public long MaxDownloadBytes { get; set; } = 4L << 30;

    /// <summary>Generator: longest one policy's files may take to fetch.</summary>
    public TimeSpan DownloadTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>True when a token is configured (file or value).</summary>
    public bool HasToken => !string.IsNullOrWhiteSpace(TokenFile) || !string.IsNullOrEmpty(Token);

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(Port), Port, 0, 65535);
        if (!IPAddress.TryParse(BindAddress, out _)) p.Add(nameof(BindAddress), $"must be an IP address such as 0.0.0.0 or 127.0.0.1 (got '{BindAddress}')");
        if (!string.IsNullOrWhiteSpace(TokenFile) && !string.IsNullOrEmpty(Token))
            p.Add(nameof(Token), $"and {nameof(TokenFile)} are both set; give the token one way only (a file from a Secret is preferred)");
        if (!string.IsNullOrWhiteSpace(TokenFile))
        {
            var problem = PolicyAccessToken.FromFile(TokenFile).Problem();
            if (problem is not null) p.Add(nameof(TokenFile), $"{TokenFile}: {problem}");
        }
        else if (!string.IsNullOrEmpty(Token) && PolicyAccessToken.Check(Token) is { } problem)
        {
            p.Add(nameof(Token), $"{problem}");
        }
        p.Range(nameof(MaxConnections), MaxConnections, 1, 10_000);
        p.Range(nameof(RequestsPerSecond), RequestsPerSecond, 1, 100_000);
        p.Range(nameof(RequestBurst), RequestBurst, 1, 100_000);
        if (string.IsNullOrWhiteSpace(DownloadDirectory) || DownloadDirectory.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
            p.Add(nameof(DownloadDirectory), $"must be a usable directory path (got '{DownloadDirectory}')");
        p.Range(nameof(MaxDownloadBytes), MaxDownloadBytes, 1L << 20, 1L << 40);
        p.Duration(nameof(DownloadTimeout), DownloadTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(6));
        return p.Items;
    }

    /// <summary>The token source; null when none is configured. <paramref name="logger"/> hears about a token file that turns unreadable.</summary>
    public PolicyAccessToken? AccessToken(Microsoft.Extensions.Logging.ILogger? logger = null) =>
        !string.IsNullOrWhiteSpace(TokenFile) ? PolicyAccessToken.FromFile(TokenFile, logger: logger)
        : !string.IsNullOrEmpty(Token) ? PolicyAccessToken.FromValue(Token)
        : null;

    /// <summary>True when <see cref="BindAddress"/> is a loopback address (only this machine can connect).</summary>
    public bool BindsLoopback => IPAddress.TryParse(BindAddress, out var address) && IPAddress.IsLoopback(address);
}
