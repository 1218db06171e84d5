using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// <c>GET /policy/{version}/{name}</c> on the learner: the policy files (<see cref="PolicyFiles.Names"/>) of a
/// committed checkpoint version, for generators that cannot mount the checkpoint volume. Versions only
/// appear in the store once complete (written aside, renamed in), so a served file is never half written;
/// a version deleted by retention answers 404 and the generator waits for the next event. Generators verify
/// the weights against the event's SHA-256, so the endpoint needs no trust of its own.
/// </summary>
public static class PolicyFileEndpoints
{
    public static IEndpointRouteBuilder MapPolicyFiles(this IEndpointRouteBuilder endpoints, string storeRoot)
    {
        var root = Path.GetFullPath(storeRoot);
        endpoints.MapGet(PolicyFiles.RoutePrefix + "/{version:long}/{name}", (long version, string name) =>
        {
            if (version < 1 || !PolicyFiles.IsServed(name)) return Results.NotFound();
            var path = Path.Combine(CheckpointLayout.VersionPath(root, version), name);
            return File.Exists(path)
                ? Results.File(path, "application/octet-stream", enableRangeProcessing: false)
                : Results.NotFound();
        });
        return endpoints;
    }
}
