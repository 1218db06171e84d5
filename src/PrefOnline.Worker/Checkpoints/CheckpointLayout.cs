using System.Text.RegularExpressions;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Names inside a checkpoint root. Everything the store uses privately starts with a dot, so an
/// operator's <c>ls</c> shows versions, the two pointers and the event log:
/// <code>
/// root/
///   .lock                      exclusive flock of the single writer (holds pid/host/since, informational)
///   latest, good               pointer files: one line, e.g. "v000009"
///   events.jsonl               append-only audit log (commit, mark_good, rollback, rollback_refused, delete, cleanup)
///   rollback.request           an operator's rollback waiting for the running learner, or the journal of a rollback in progress (see CheckpointRollbackRequest)
///   v000009/manifest.json      + manifest.sha256 + the artefacts the manifest lists, nothing else
///   .tmp-v000010-&lt;guid&gt;/      a write in progress (or left by a crash: removed by the next writer)
///   .deleting-v000003-&lt;guid&gt;/  a version being removed by retention (renamed first so it vanishes atomically)
///   blobs/sha256/&lt;hex&gt;        a shared artefact's bytes, once for every version that hard-links it (see CheckpointBlobs)
///   .latest.tmp, .good.tmp     a pointer being replaced (left by a crash: ignored, removed by the next writer)
///   .rollback.request.tmp-…    a rollback request being written
/// </code>
/// </summary>
internal static partial class CheckpointLayout
{
    public const string ManifestFileName = "manifest.json";

    /// <summary>
    /// sha256sum-format checksum of manifest.json ("&lt;hex&gt;  manifest.json"), so damage to the manifest
    /// itself (a flipped digit in an offset) is caught too, and <c>sha256sum -c manifest.sha256</c> works.
    /// </summary>
    public const string ManifestChecksumFileName = "manifest.sha256";
    public const string LatestPointer = "latest";
    public const string GoodPointer = "good";
    public const string EventsFileName = "events.jsonl";
    public const string LockFileName = ".lock";
    public const string TempDirectoryPrefix = ".tmp-";
    public const string DeletingDirectoryPrefix = ".deleting-";
    public const string PointerTempSuffix = ".tmp";
    public const string RollbackRequestFileName = "rollback.request";
    public const string RollbackRequestTempPrefix = ".rollback.request.tmp-";

    /// <summary>Longest artefact name; keeps every path well inside NAME_MAX (255 bytes).</summary>
    public const int MaxArtefactNameLength = 128;

    public static string VersionPath(string root, long version) => Path.Combine(root, CheckpointVersion.DirectoryName(version));

    public static string PointerTempName(string pointer) => "." + pointer + PointerTempSuffix;

    /// <summary>
    /// Artefacts are flat, portable file names: letters, digits, '.', '_', '-', starting with a letter or
    /// digit. No directories (the "no unexpected files" check stays one listing), no hidden files, and
    /// not the names of the manifest and its checksum. Returns why a name is refused, or null when it is fine.
    /// </summary>
    public static string? ArtefactNameProblem(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "an artefact name cannot be empty";
        if (name.Length > MaxArtefactNameLength) return $"artefact name '{name}' is longer than {MaxArtefactNameLength} characters";
        if (!ArtefactNamePattern().IsMatch(name))
            return $"artefact name '{name}' must be a plain file name of letters, digits, '.', '_' or '-' starting with a letter or digit";
        if (string.Equals(name, ManifestFileName, StringComparison.OrdinalIgnoreCase) || string.Equals(name, ManifestChecksumFileName, StringComparison.OrdinalIgnoreCase))
            return $"'{name}' is written by the store itself";
        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ArtefactNamePattern();
}
