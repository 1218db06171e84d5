using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// <c>GET /policy/{version}/{name}</c> on the learner: the policy files (<see cref="PolicyFiles.Names"/>) of a
/// committed checkpoint version, for generators that cannot mount the checkpoint volume. Versions only
/// appear in the store once complete (written aside, renamed in), so a served file is never half written.
/// A served version is leased (<see cref="PolicyServingLeases"/>): retention keeps it while a generator
/// fetches its files, and each file is opened before the response starts, so a deletion cannot cut a
/// download short. A version already deleted answers 404 and the generator waits for the next event.
/// Generators verify the weights against the event's SHA-256, so the endpoint needs no trust of its own.
/// </summary>
public static class PolicyFileEndpoints
{
    public static IEndpointRouteBuilder MapPolicyFiles(this IEndpointRouteBuilder endpoints, string storeRoot, PolicyServingLeases? leases = null)
    {
        var root = Path.GetFullPath(storeRoot);
        endpoints.MapGet(PolicyFiles.RoutePrefix + "/{version:long}/{name}", (long version, string name) =>
        {
            if (version < 1 || !PolicyFiles.IsServed(name)) return Results.NotFound();
            var directory = CheckpointLayout.VersionPath(root, version);
            if (Directory.Exists(directory)) leases?.Renew(version); // before opening: retention must not slip in between
            var path = Path.Combine(directory, name);
            FileStream file;
            try
            {
                file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return Results.NotFound();
            }
            return Results.Stream(file, "application/octet-stream", enableRangeProcessing: false); // disposes the stream after the response
        });
        return endpoints;
    }
}
