using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Where a published policy can be fetched, as the <c>uri</c> of its policy event. Without a base URL it is
/// the <c>file://</c> path in the checkpoint store (generators must mount the learner's volume); with
/// <c>Worker:PolicyBaseUrl</c> it is the learner's own HTTP endpoint (<see cref="PolicyFileEndpoints"/>), so
/// generators need nothing but the network — the default of the Helm chart, whose learner volume is ReadWriteOnce.
/// </summary>
public sealed class PolicyLocation(string? baseUrl)
{
    public string UriOf(Checkpoint checkpoint) => baseUrl is { Length: > 0 } b
        ? b.TrimEnd('/') + PolicyFiles.PathOf(checkpoint.Version, StateFiles.Policy)
        : new Uri(Path.GetFullPath(checkpoint.GetPath(StateFiles.Policy))).AbsoluteUri;

    /// <summary>Null when valid, else why (for <c>Worker:PolicyBaseUrl</c>).</summary>
    public static string? Problem(string? baseUrl) =>
        baseUrl is null || (Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && string.IsNullOrEmpty(uri.Query) && string.IsNullOrEmpty(uri.Fragment))
            ? null
            : $"must be an absolute http:// or https:// URL without query, e.g. http://prefonline-learner-0.prefonline-learner:8080 (got '{baseUrl}')";
}
