using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// A generator's way from a policy event to a directory of verified files it may load. It trusts nothing the event
/// says that it cannot check:
/// <list type="number">
/// <item>the uri must name a policy file where this generator expects one — <c>{Worker:PolicyBaseUrl}/policy/{n}/policy.safetensors</c>
/// (same scheme, host and port, no user info, query or fragment, no <c>..</c>) or <c>{Checkpoints:Directory}/v{n}/policy.safetensors</c>;
/// the files are then fetched from URLs (paths) this class builds from the configured base and <c>n</c>, never from the
/// event's text, and redirects are not followed;</item>
/// <item>the event must list the SHA-256 of every file of the policy (<see cref="PolicyFiles.FileListProblem"/>), and only
/// those files are fetched; each is hashed while it streams into a private directory on the data volume and the whole
/// version is refused on the first mismatch;</item>
/// <item>the files together must stay within <c>PolicyDistribution:MaxDownloadBytes</c> (checked against Content-Length
/// before and while streaming).</item>
/// </list>
/// Files on a mounted volume are copied the same way, so what is loaded is exactly what was hashed. Anything else raises
/// <see cref="PolicyRefusedException"/> with its reason; nothing is left behind. The caller loads the verified directory
/// and then <see cref="Discard"/>s it, so the download directory holds at most one version (the cap). Requests carry the
/// bearer token when one is set.
/// <para>A LoRA version lists its base (<c>reference.safetensors</c>), the same multi-GB file for every version: the
/// fetcher keeps the last base it verified as <c>base-&lt;sha256&gt;</c> in the download directory and takes the next
/// version's base from there (a hard link, hashed again before use) instead of fetching it again.</para>
/// </summary>
public sealed partial class PolicyFetcher : IDisposable
{
    private readonly Uri? baseUrl;
    private readonly string? checkpointRoot;
    private readonly long maxBytes;
    private readonly PolicyAccessToken? token;
    private readonly HttpClient http;
    private readonly ILogger logger;

    /// <param name="policyBaseUrl">Worker:PolicyBaseUrl: the learner http(s) events must point at; null refuses every http(s) event.</param>
    /// <param name="checkpointDirectory">Checkpoints:Directory: where file events must point (a mounted learner volume); null refuses every file event.</param>
    /// <param name="handler">The HTTP handler (tests); default: a SocketsHttpHandler that follows no redirects.</param>
    public PolicyFetcher(PolicyDistributionOptions options, string? policyBaseUrl, string? checkpointDirectory, ILogger logger, HttpMessageHandler? handler = null)
    {
        baseUrl = string.IsNullOrWhiteSpace(policyBaseUrl) ? null : new Uri(policyBaseUrl.TrimEnd('/') + "/", UriKind.Absolute);
        checkpointRoot = string.IsNullOrWhiteSpace(checkpointDirectory) ? null : Path.GetFullPath(checkpointDirectory);
        maxBytes = options.MaxDownloadBytes;
        token = options.AccessToken(logger);
        this.logger = logger;
        Root = Path.GetFullPath(options.DownloadDirectory);
        http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(30) }, disposeHandler: true)
        {
            Timeout = options.DownloadTimeout,
            MaxResponseContentBufferSize = 1 << 20, // responses are streamed; nothing is buffered whole
        };
    }

    /// <summary>The download directory (created by <see cref="Prepare"/>).</summary>
    public string Root { get; }

    /// <summary>Creates the download directory and removes what an earlier process left in it (its own version directories only).</summary>
    public void Prepare()
    {
        Directory.CreateDirectory(Root);
        foreach (var entry in Directory.EnumerateDirectories(Root))
        {
            if (!DownloadName().IsMatch(Path.GetFileName(entry))) continue;
            Directory.Delete(entry, recursive: true);
            logger.LogInformation("Removed {Directory}, left in the policy download directory by an earlier process", entry);
        }
    }

    /// <summary>Fetches and verifies every file of <paramref name="policyEvent"/>'s policy; returns the directory holding them.</summary>
    /// <exception cref="PolicyRefusedException">The event or its files cannot be trusted, or could not be fetched (nothing is left behind).</exception>
    public async Task<string> FetchAsync(PolicyEvent policyEvent, CancellationToken cancellationToken)
    {
        var locate = Locate(policyEvent.Uri);
        if (PolicyFiles.FileListProblem(policyEvent.Files, policyEvent.Sha256) is { } listProblem)
            throw new PolicyRefusedException(PolicyRefusalReasons.IncompleteFileList, listProblem);

        var target = Path.Combine(Root, $"v{policyEvent.Version}-{policyEvent.Sha256[..12]}");
        var partial = target + ".partial";
        Directory.CreateDirectory(Root);
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        try
        {
            long total = 0;
            foreach (var (name, expected) in policyEvent.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                var path = Path.Combine(partial, name);
                var (actual, bytes) = name == StateFiles.Reference && await FromBaseCacheAsync(expected, path, cancellationToken).ConfigureAwait(false) is { } cached
                    ? cached
                    : await locate(name, path, maxBytes - total, cancellationToken).ConfigureAwait(false);
                total += bytes;
                if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
                    throw new PolicyRefusedException(PolicyRefusalReasons.HashMismatch, $"{name} has SHA-256 {actual}, the event says {expected}");
            }
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.Move(partial, target);
            if (policyEvent.Files.TryGetValue(StateFiles.Reference, out var baseSha)) KeepBase(Path.Combine(target, StateFiles.Reference), baseSha);
        }
        catch (IOException e)
        {
            DeleteQuietly(partial);
            throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"writing to {Root} failed: {e.Message}", e);
        }
        catch
        {
            DeleteQuietly(partial);
            throw;
        }
        return target;
    }

    private string BasePath(string sha256) => Path.Combine(Root, BaseCachePrefix + sha256.ToLowerInvariant());

    private const string BaseCachePrefix = "base-";

    /// <summary>
    /// The base a LoRA version lists, from the copy kept after an earlier version (hard-linked into <paramref name="path"/>,
    /// hashed): (sha256, bytes), or null when there is none, it cannot be linked or it no longer matches (then it is fetched).
    /// </summary>
    private async Task<(string, long)?> FromBaseCacheAsync(string sha256, string path, CancellationToken cancellationToken)
    {
        var cached = BasePath(sha256);
        try
        {
            if (!File.Exists(cached) || !PosixFileSystem.TryHardLink(cached, path)) return null;
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
            if (string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase)) return (actual, file.Length);
        }
        catch (IOException e)
        {
            logger.LogWarning("The kept LoRA base {Path} could not be used ({Error}); fetching the base again", cached, e.Message);
        }
        logger.LogWarning("The kept LoRA base {Path} is damaged or unusable; fetching the base again", cached);
        File.Delete(path);
        File.Delete(cached);
        return null;
    }

    /// <summary>Keeps a verified base for the next version (a hard link to the fetched file) and drops any other kept base.</summary>
    private void KeepBase(string fetched, string sha256)
    {
        try
        {
            var keep = BasePath(sha256);
            if (!File.Exists(keep) && !PosixFileSystem.TryHardLink(fetched, keep)) File.Copy(fetched, keep);
            foreach (var other in Directory.EnumerateFiles(Root, BaseCachePrefix + "*").Where(f => f != keep)) File.Delete(other);
        }
        catch (IOException e)
        {
            logger.LogWarning("Could not keep the LoRA base of this version in {Root} ({Error}); the next version fetches it again", Root, e.Message);
        }
    }

    /// <summary>Deletes a directory <see cref="FetchAsync"/> returned, once its files are loaded (or refused).</summary>
    public void Discard(string directory)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(directory)) == Root) DeleteQuietly(directory);
    }

    public void Dispose() => http.Dispose();

    /// <summary>Checks the event's uri and returns how to fetch one of its version's files into a path: (SHA-256, bytes).</summary>
    private Func<string, string, long, CancellationToken, Task<(string Sha256, long Bytes)>> Locate(string uriText)
    {
        if (uriText.Contains("..", StringComparison.Ordinal) || uriText.Contains('\\', StringComparison.Ordinal))
            throw Untrusted(uriText, "it contains '..' or a backslash");
        if (!Uri.TryCreate(uriText, UriKind.Absolute, out var uri)) throw Untrusted(uriText, "it is not an absolute URI");
        if (uri.Scheme is "http" or "https")
        {
            if (baseUrl is null) throw Untrusted(uriText, "this generator has no Worker:PolicyBaseUrl, so it fetches policies from no learner");
            if (!string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
                throw Untrusted(uriText, "it carries user info, a query or a fragment");
            // The learner writes canonical URIs (PolicyLocation); escapes, dot segments or case that canonicalise into
            // something else are a disguise, not a mistake.
            if (!string.Equals(uri.AbsoluteUri, uriText, StringComparison.Ordinal))
                throw Untrusted(uriText, $"it is not in canonical form ({uri.AbsoluteUri})");
            if (!string.Equals(uri.GetLeftPart(UriPartial.Authority), baseUrl.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase))
                throw Untrusted(uriText, $"it is not on {baseUrl.GetLeftPart(UriPartial.Authority)} (Worker:PolicyBaseUrl)");
            var prefix = baseUrl.AbsolutePath + PolicyFiles.RoutePrefix.TrimStart('/') + "/";
            var path = uri.AbsolutePath;
            if (!path.StartsWith(prefix, StringComparison.Ordinal) || !TryVersion(path[prefix.Length..], '/', out var version))
                throw Untrusted(uriText, $"it is not {baseUrl.AbsoluteUri.TrimEnd('/')}{PolicyFiles.RoutePrefix}/{{version}}/{StateFiles.Policy} (or {PeftAdapter.WeightsFile})");
            return (name, file, budget, ct) => DownloadAsync(new Uri(baseUrl, $"{PolicyFiles.RoutePrefix.TrimStart('/')}/{version.ToString(CultureInfo.InvariantCulture)}/{name}"), file, budget, ct);
        }
        if (uri.IsFile)
        {
            if (checkpointRoot is null) throw Untrusted(uriText, "this generator has no checkpoint directory to read policies from");
            if (!string.IsNullOrEmpty(uri.Host)) throw Untrusted(uriText, "it names a file on another host");
            var local = Path.GetFullPath(uri.LocalPath);
            var directory = Path.GetDirectoryName(local);
            if (!PolicyFiles.IsWeightsName(Path.GetFileName(local)) || directory is null || Path.GetDirectoryName(directory) != checkpointRoot
                || !CheckpointVersion.TryParseDirectoryName(Path.GetFileName(directory), out _))
                throw Untrusted(uriText, $"it is not {checkpointRoot}/vNNNNNN/{StateFiles.Policy} or {PeftAdapter.WeightsFile} (Checkpoints:Directory)");
            return (name, file, budget, ct) => CopyAsync(Path.Combine(directory, name), file, budget, ct);
        }
        throw Untrusted(uriText, "only http(s) (the learner, Worker:PolicyBaseUrl) and file (a mounted checkpoint volume) are supported");
    }

    private static PolicyRefusedException Untrusted(string uri, string why) =>
        new(PolicyRefusalReasons.UntrustedUri, $"uri {Excerpt(uri)} is not trusted: {why}");

    private static bool TryVersion(string rest, char separator, out long version)
    {
        version = 0;
        var slash = rest.IndexOf(separator, StringComparison.Ordinal);
        return slash > 0 && PolicyFiles.IsWeightsName(rest[(slash + 1)..])
               && long.TryParse(rest[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out version) && version >= CheckpointVersion.First;
    }

    private async Task<(string, long)> DownloadAsync(Uri uri, string path, long budget, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (token is not null)
        {
            try
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Current());
            }
            catch (InvalidOperationException e)
            {
                throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: {e.Message}", e);
            }
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: no answer within {http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            if (response.StatusCode != HttpStatusCode.OK)
                throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}{Explain(response.StatusCode)}");
            if (response.Content.Headers.ContentLength is { } length && length > budget)
                throw TooLarge(uri.ToString(), length, budget);
            try
            {
                var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (body.ConfigureAwait(false)) return await StoreAsync(body, uri.ToString(), path, budget, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: {e.Message}", e);
            }
            catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{uri}: not complete within {http.Timeout.TotalSeconds:0} s", e);
            }
        }
    }

    private static string Explain(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized => " (the learner did not accept this generator's token: PolicyDistribution:TokenFile)",
        HttpStatusCode.Gone => " (the learner withdrew this version: a rollback abandoned it)",
        HttpStatusCode.NotFound => " (the learner has no such version or file: deleted by retention, or not a policy)",
        HttpStatusCode.TooManyRequests => " (the learner's rate limit)",
        _ => status is >= HttpStatusCode.MultipleChoices and < HttpStatusCode.BadRequest ? " (redirects are not followed)" : "",
    };

    private static async Task<(string, long)> CopyAsync(string source, string path, long budget, CancellationToken cancellationToken)
    {
        FileStream input;
        try
        {
            // Device files (file:///dev/zero) report length 0 and would stream forever; only regular files are policy files.
            var info = new FileInfo(source);
            if (!info.Exists) throw new FileNotFoundException("does not exist (checkpoint volume not mounted here, or the version was deleted by retention)");
            if ((info.Attributes & (FileAttributes.Device | FileAttributes.Directory)) != 0 || info.Length == 0) throw new IOException("empty, or not a regular file");
            if (info.Length > budget) throw TooLarge(source, info.Length, budget);
            input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicyRefusedException(PolicyRefusalReasons.FetchFailed, $"{source}: {e.Message}", e);
        }
        await using (input.ConfigureAwait(false)) return await StoreAsync(input, source, path, budget, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Streams <paramref name="body"/> into a new file at <paramref name="path"/>, hashing it; refuses more than <paramref name="budget"/> bytes.</summary>
    private static async Task<(string, long)> StoreAsync(Stream body, string what, string path, long budget, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await using (file.ConfigureAwait(false))
        {
            var buffer = new byte[1 << 16];
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                total += read;
                if (total > budget) throw TooLarge(what, budget + 1, budget, streaming: true);
                hash.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        return (Convert.ToHexStringLower(hash.GetHashAndReset()), total);
    }

    /// <param name="bytes">The size announced, or (while streaming) how much arrived before the budget ran out.</param>
    private static PolicyRefusedException TooLarge(string what, long bytes, long budget, bool streaming = false) =>
        new(PolicyRefusalReasons.TooLarge, $"{what} has {(streaming ? "more than " : "")}{bytes - (streaming ? 1 : 0)} bytes; only {budget} of PolicyDistribution:MaxDownloadBytes are left for this version");

    private void DeleteQuietly(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not delete {Directory}: {Error}", directory, e.Message);
        }
    }

    private static string Excerpt(string text) => text.Length <= 200 ? text : text[..200] + "…";

    [GeneratedRegex(@"^v[0-9]+-[0-9a-f]{12}(\.partial)?$", RegexOptions.CultureInvariant)]
    private static partial Regex DownloadName();
}
