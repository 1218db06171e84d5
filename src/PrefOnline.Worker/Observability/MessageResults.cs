namespace PrefOnline.Worker.Observability;

/// <summary>
/// The contract for the <c>result</c> label of <c>prefonline_messages_total{topic,result}</c>, which
/// PrefOnline.Streaming records. The alert rules depend on <see cref="DeadLetter"/>; other values
/// (accepted, produced, …) are Streaming's to choose from a small fixed set.
/// </summary>
public static class MessageResults
{
    /// <summary>The record was routed to the dead-letter topic (bad schema, invalid field, oversize, …).</summary>
    public const string DeadLetter = "dead_letter";

    /// <summary>The record was refused and skipped without a dead letter (the policy topic; see docs/OPERATIONS.md, "Failure policy").</summary>
    public const string Skipped = "skipped";
}
