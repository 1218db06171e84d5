namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// Why a generator refused a valid policy event: values of the <c>reason</c> label of
/// <c>prefonline_skipped_records_total{topic="prefonline.policy"}</c> beside the validator's codes. A refused event is
/// skipped and counted, not dead-lettered (every generator reads the policy topic from its start; docs/OPERATIONS.md,
/// "Failure policy"), and the generator keeps serving the version it has.
/// </summary>
public static class PolicyRefusalReasons
{
    /// <summary>The uri is not a policy file under this generator's <c>Worker:PolicyBaseUrl</c> (http/https) or its checkpoint directory (file), or uses another scheme.</summary>
    public const string UntrustedUri = "untrusted-uri";

    /// <summary>The event does not give the SHA-256 of every file a policy needs (the weights, a complete tokenizer), or names a file that is not a policy file.</summary>
    public const string IncompleteFileList = "incomplete-file-list";

    /// <summary>A file's SHA-256 differs from the event's.</summary>
    public const string HashMismatch = "hash-mismatch";

    /// <summary>The files together exceed <c>PolicyDistribution:MaxDownloadBytes</c>.</summary>
    public const string TooLarge = "too-large";

    /// <summary>A file could not be fetched: the learner refused (401: token, 410: withdrawn by a rollback, 404: deleted), did not answer, the volume lacks it, or the download directory is full.</summary>
    public const string FetchFailed = "fetch-failed";

    /// <summary>The verified files do not load (weights or tokenizer malformed).</summary>
    public const string LoadFailed = "load-failed";

    public static IReadOnlyList<string> All { get; } = [UntrustedUri, IncompleteFileList, HashMismatch, TooLarge, FetchFailed, LoadFailed];
}

/// <summary>A policy event the generator will not load, with its <see cref="PolicyRefusalReasons"/> code.</summary>
public sealed class PolicyRefusedException(string reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Reason { get; } = reason;
}
