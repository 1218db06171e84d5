namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// What <c>LoadLatestValidAsync</c> found: the newest valid version on <c>latest</c>'s lineage (null when
/// there is none: an empty store or everything corrupt), every version it skipped on the way with the
/// reason, and warnings that concern no single version (an unreadable pointer). Log and count
/// <see cref="Skipped"/>: each entry is a checkpoint the worker refused.
/// </summary>
public sealed record CheckpointLoadResult(
    Checkpoint? Checkpoint,
    IReadOnlyList<SkippedCheckpoint> Skipped,
    IReadOnlyList<string> Warnings)
{
    /// <summary>True when something newer than what was loaded had to be refused.</summary>
    public bool FellBack => Skipped.Count > 0;
}
