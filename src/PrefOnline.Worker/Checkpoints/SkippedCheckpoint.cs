namespace PrefOnline.Worker.Checkpoints;

/// <summary>A version <c>LoadLatestValid</c> passed over, and why (one line, e.g. "policy.safetensors: sha256 mismatch ...").</summary>
public sealed record SkippedCheckpoint(long Version, string Reason)
{
    public override string ToString() => $"{CheckpointVersion.DirectoryName(Version)}: {Reason}";
}
