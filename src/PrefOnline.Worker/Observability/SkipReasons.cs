namespace PrefOnline.Worker.Observability;

/// <summary>Values of the <c>reason</c> label of <c>prefonline_skipped_updates_total</c>.</summary>
public static class SkipReasons
{
    /// <summary>The update's loss or gradients were NaN/Inf; the optimizer step was not applied.</summary>
    public const string NonFinite = "non_finite";
    /// <summary>A guardrail paused updates.</summary>
    public const string Paused = "paused";
    /// <summary>The guardrail rejected the finished update (not checkpointed, not published).</summary>
    public const string Rejected = "rejected";
    /// <summary>Not enough scored samples for a batch when the update was due.</summary>
    public const string InsufficientData = "insufficient_data";
    /// <summary>The update threw; the learner carried on from the previous state.</summary>
    public const string Error = "error";

    public static IReadOnlyList<string> All { get; } = [NonFinite, Paused, Rejected, InsufficientData, Error];
}
