using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Where a published policy can be fetched, as the <c>uri</c> of its policy event. Without a base URL it is
/// the <c>file://</c> path in the checkpoint store (generators must mount the learner's volume); with
/// <c>Worker:PolicyBaseUrl</c> it is the learner's own policy port (<see cref="PolicyServer"/>), so generators need nothing
/// but the network and the token — the default of the Helm chart, whose learner volume is ReadWriteOnce.
/// </summary>
public sealed class PolicyLocation(string? baseUrl)
{
    /// <remarks>Always in canonical form (<see cref="Uri.AbsoluteUri"/>): generators refuse anything else (<see cref="PolicyFetcher"/>).
    /// The uri names the version's weights file (<see cref="PolicyFiles.WeightsNameOf"/>: a LoRA version's adapter).</remarks>
    public string UriOf(Checkpoint checkpoint)
    {
        var weights = PolicyFiles.WeightsNameOf(checkpoint.Contains);
        return baseUrl is { Length: > 0 } b
            ? new Uri(b.TrimEnd('/') + PolicyFiles.PathOf(checkpoint.Version, weights)).AbsoluteUri
            : new Uri(Path.GetFullPath(checkpoint.GetPath(weights))).AbsoluteUri;
    }

    /// <summary>Null when valid, else why (for <c>Worker:PolicyBaseUrl</c>).</summary>
    public static string? Problem(string? baseUrl) =>
        baseUrl is null || (Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && string.IsNullOrEmpty(uri.Query) && string.IsNullOrEmpty(uri.Fragment))
            ? null
            : $"must be an absolute http:// or https:// URL without query, e.g. http://prefonline-policy.ml.svc:8081 (got '{baseUrl}')";
}
