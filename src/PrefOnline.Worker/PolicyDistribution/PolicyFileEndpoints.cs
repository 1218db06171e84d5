using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// <c>GET /policy/{version}/{name}</c> on the learner's policy port (<see cref="PolicyServer"/>): the policy files
/// (<see cref="PolicyFiles.Names"/>) of a committed checkpoint version on the current lineage, for generators that cannot
/// mount the checkpoint volume. Versions only appear in the store once complete (written aside, renamed in), so a served
/// file is never half written. A version a rollback abandoned answers 410 Gone (<see cref="ServedLineage"/>), one that
/// does not exist (or a file that is not a policy file) 404. A served version is leased (<see cref="PolicyServingLeases"/>):
/// retention keeps it while a generator fetches its files, and each file is opened before the response starts, so a
/// deletion cannot cut a download short. Authentication and limits are the server's; generators verify every file
/// against the policy event's hashes.
/// </summary>
public static class PolicyFileEndpoints
{
    public static IEndpointRouteBuilder MapPolicyFiles(this IEndpointRouteBuilder endpoints, ServedLineage lineage, PolicyServingLeases? leases = null)
    {
        endpoints.MapGet(PolicyFiles.RoutePrefix + "/{version:long}/{name}", async (long version, string name, HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            if (version < 1 || !PolicyFiles.IsServed(name)) return Results.NotFound();
            switch (await lineage.StateOfAsync(version, context.RequestAborted).ConfigureAwait(false))
            {
                case ServedVersionState.Missing:
                    return Results.NotFound();
                case ServedVersionState.Withdrawn:
                    return Results.Text($"version {version} is not on the current lineage: a rollback withdrew it\n", "text/plain; charset=utf-8", statusCode: StatusCodes.Status410Gone);
            }
            leases?.Renew(version); // before opening: retention must not slip in between
            var path = Path.Combine(CheckpointLayout.VersionPath(lineage.Root, version), name);
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
