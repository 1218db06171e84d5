namespace PrefOnline.Streaming.Contracts;

/// <summary>JSON <c>kind</c> of a policy event.</summary>
public enum PolicyEventKind
{
    /// <summary><c>"publish"</c> (or <c>kind</c> absent): a new policy version passed the guardrails.</summary>
    Publish = 0,

    /// <summary><c>"rollback"</c>: serving must go back from <c>from_version</c> to <c>version</c>.</summary>
    Rollback = 1,
}
