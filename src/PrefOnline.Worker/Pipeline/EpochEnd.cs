namespace PrefOnline.Worker.Pipeline;

/// <summary>How a pipeline epoch ended and what the pipeline must do next.</summary>
/// <param name="Kind">Stop, reload or rollback.</param>
/// <param name="Reason">One line for logs and the rollback event.</param>
/// <param name="TargetVersion">The checkpoint to roll back to (guardrail rollback).</param>
public sealed record EpochEnd(EpochEndKind Kind, string Reason, long? TargetVersion = null)
{
    public static EpochEnd Stop { get; } = new(EpochEndKind.Stop, "stopping");
}
