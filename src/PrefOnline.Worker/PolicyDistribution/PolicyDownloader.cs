using System.Net;
using System.Security.Cryptography;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Fetches a policy named by an <c>http(s)://</c> policy event into a local directory a generator loads from:
/// the weights (checked against the event's SHA-256 while streaming, so a wrong file never lands under its
/// final name) and the tokenizer files beside it (absent ones answer 404 and are skipped). Only the newest
/// download is kept: the directory of the previous one is deleted once a newer one is complete.
/// </summary>
public sealed class PolicyDownloader(HttpClient http, string root)
{
    private string? current;

    /// <summary>Downloads the event's policy; returns the path of the local weights file.</summary>
    /// <exception cref="PolicyDownloadException">The learner did not serve it, or it does not match the event.</exception>
    public async Task<string> DownloadAsync(PolicyEvent policyEvent, CancellationToken cancellationToken)
    {
        var weights = new Uri(policyEvent.Uri);
        var name = Path.GetFileName(weights.AbsolutePath);
        if (name != StateFiles.Policy) throw new PolicyDownloadException($"{policyEvent.Uri} does not name a {StateFiles.Policy}");
        var target = Path.Combine(root, $"v{policyEvent.Version}-{policyEvent.Sha256[..Math.Min(12, policyEvent.Sha256.Length)]}");
        var partial = target + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        try
        {
            var actual = await FetchAsync(weights, Path.Combine(partial, name), required: true, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(actual, policyEvent.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new PolicyDownloadException($"{policyEvent.Uri} has SHA-256 {actual}, the event says {policyEvent.Sha256}");
            foreach (var tokenizerFile in PolicyFiles.TokenizerNames)
                await FetchAsync(new Uri(weights, tokenizerFile), Path.Combine(partial, tokenizerFile), required: false, cancellationToken).ConfigureAwait(false);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.Move(partial, target);
        }
        catch
        {
            if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
            throw;
        }
        if (current is { } previous && previous != target && Directory.Exists(previous)) Directory.Delete(previous, recursive: true);
        current = target;
        return Path.Combine(target, name);
    }

    /// <summary>Streams <paramref name="uri"/> to <paramref name="path"/>; returns its SHA-256 (hex), or null when absent and not required.</summary>
    private async Task<string?> FetchAsync(Uri uri, string path, bool required, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new PolicyDownloadException($"{uri}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PolicyDownloadException($"{uri}: timed out after {http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.NotFound && !required) return null;
            if (!response.IsSuccessStatusCode) throw new PolicyDownloadException($"{uri}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await using (file.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    int read;
                    while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
    }
}
