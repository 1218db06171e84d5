using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// The bearer token of the /policy surface: the learner compares what a request presents with it, generators send it.
/// Read from a file (a mounted Kubernetes Secret) and read again when <see cref="RefreshInterval"/> has passed, so a
/// rotated Secret (kubelet swaps the mounted file in place) takes effect without a restart; a file that turns unreadable
/// or invalid later keeps the last good token (logged). Comparison is constant-time over the tokens' SHA-256, so neither
/// the length nor any prefix of the token leaks through timing. The token is never logged (<see cref="ToString"/> is <c>***</c>).
/// </summary>
public sealed class PolicyAccessToken
{
    /// <summary>How long a token read from a file is used before the file is read again.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(10);

    private readonly string? path;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Lock gate = new();
    private string? value;
    private byte[]? hash;
    private DateTimeOffset readAt = DateTimeOffset.MinValue;
    private string? lastProblem;

    private PolicyAccessToken(string? path, string? fixedValue, TimeProvider? time, ILogger? logger)
    {
        this.path = path;
        this.time = time ?? TimeProvider.System;
        this.logger = logger ?? NullLogger.Instance;
        if (fixedValue is not null) Set(fixedValue);
        else Refresh(); // read now: the first requests must not meet an empty token
    }

    /// <summary>The token in <paramref name="file"/> (whitespace around it ignored).</summary>
    public static PolicyAccessToken FromFile(string file, TimeProvider? time = null, ILogger? logger = null) => new(file, null, time, logger);

    /// <summary>A token given directly (an environment variable from a Secret).</summary>
    public static PolicyAccessToken FromValue(string token) => new(null, token.Trim(), null, null);

    /// <summary>
    /// Null when <paramref name="token"/> can be a bearer token, else why not: at least
    /// <see cref="PolicyDistributionOptions.MinTokenLength"/> characters of RFC 6750's token alphabet (letters, digits,
    /// <c>-._~+/</c>, trailing <c>=</c>), so it is hard to guess and cannot break the Authorization header.
    /// </summary>
    public static string? Check(string token)
    {
        var trimmed = token.Trim();
        if (trimmed.Length < PolicyDistributionOptions.MinTokenLength)
            return $"the token has {trimmed.Length} characters; at least {PolicyDistributionOptions.MinTokenLength} are required (e.g. openssl rand -hex 32)";
        var padding = trimmed.Length - trimmed.TrimEnd('=').Length;
        foreach (var c in trimmed[..^padding])
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '+' or '/'))
                return "the token may hold only letters, digits and -._~+/ (with = at the end), as a bearer token must";
        }
        return null;
    }

    /// <summary>Null when the token can be read and is valid now, else why not (for the start-up check).</summary>
    public string? Problem()
    {
        if (path is null) return value is null ? "no token" : null;
        var (_, problem) = Read(path);
        return problem;
    }

    /// <summary>The token to send (reading the file again when due).</summary>
    /// <exception cref="InvalidOperationException">The token has never been readable.</exception>
    public string Current()
    {
        Refresh();
        lock (gate) return value ?? throw new InvalidOperationException($"the policy token cannot be read: {lastProblem}");
    }

    /// <summary>True when <paramref name="presented"/> is the token; constant time in the token's content.</summary>
    public bool Matches(string? presented)
    {
        if (presented is null) return false;
        Refresh();
        byte[]? expected;
        lock (gate) expected = hash;
        if (expected is null) return false; // never readable: nobody gets in
        Span<byte> actual = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), actual);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public override string ToString() => "***";

    private void Refresh()
    {
        if (path is null) return;
        lock (gate)
        {
            if (time.GetUtcNow() - readAt < RefreshInterval) return;
            readAt = time.GetUtcNow();
        }
        var (token, problem) = Read(path);
        lock (gate)
        {
            if (token is not null)
            {
                if (lastProblem is not null) logger.LogInformation("Policy token file {Path} is readable again", path);
                lastProblem = null;
                Set(token);
                return;
            }
            if (problem != lastProblem)
            {
                if (value is null) logger.LogError("Policy token file {Path}: {Problem}; no request is accepted and no policy can be fetched until it is fixed", path, problem);
                else logger.LogWarning("Policy token file {Path}: {Problem}; keeping the token read before", path, problem);
            }
            lastProblem = problem;
        }
    }

    private void Set(string token)
    {
        value = token;
        hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    private static (string? Token, string? Problem) Read(string file)
    {
        string text;
        try
        {
            var info = new FileInfo(file);
            if (!info.Exists) return (null, "does not exist");
            if (info.Length > 4096) return (null, $"is {info.Length} bytes, too large for a token");
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot be read ({e.Message})");
        }
        var token = text.Trim();
        return Check(token) is { } problem ? (null, problem) : (token, null);
    }
}
