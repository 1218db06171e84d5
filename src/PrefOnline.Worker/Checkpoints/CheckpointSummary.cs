namespace PrefOnline.Worker.Checkpoints;

/// <summary>One row of a store listing: a version, its verdict and which pointers name it.</summary>
public sealed record CheckpointSummary(CheckpointVerification Verification, bool IsLatest, bool IsGood)
{
    public long Version => Verification.Version;

    /// <summary>Null when the manifest could not be read.</summary>
    public CheckpointManifest? Manifest => Verification.Manifest;
}
