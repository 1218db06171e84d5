namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The operation key (<see cref="Polly.ResilienceContext.OperationKey"/>) of each kind of checkpoint I/O the
/// retry pipeline runs, so a pipeline can tell them apart: a chaos strategy in a test fails only version
/// writes (a full disk) while deletions, which free space, still work.
/// </summary>
public static class CheckpointIoOperations
{
    /// <summary>Creating the store's root.</summary>
    public const string Open = "checkpoint.open";

    /// <summary>Removing what a crashed writer left.</summary>
    public const string Cleanup = "checkpoint.cleanup";

    /// <summary>Writing one version directory (every artefact, manifest, rename into place).</summary>
    public const string WriteVersion = "checkpoint.write-version";

    /// <summary>Replacing <c>latest</c> or <c>good</c>, or writing / removing the rollback journal.</summary>
    public const string MovePointer = "checkpoint.move-pointer";

    /// <summary>Deleting a version (retention, or making room on a full device).</summary>
    public const string Retention = "checkpoint.retention";

    /// <summary>Verifying or reading a version.</summary>
    public const string Read = "checkpoint.read";
}

/// <summary>
/// Registered in the worker's services, replaces the learner's checkpoint retry pipeline
/// (<see cref="CheckpointRetry.CreatePipeline"/> by default), e.g. to add a circuit breaker or, in tests, a
/// chaos strategy that fails one kind of <see cref="CheckpointIoOperations"/> (a full disk).
/// </summary>
public sealed record CheckpointIoPipeline(Polly.ResiliencePipeline Pipeline);
