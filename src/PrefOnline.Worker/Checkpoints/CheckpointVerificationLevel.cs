namespace PrefOnline.Worker.Checkpoints;

/// <summary>How much a verification reads.</summary>
public enum CheckpointVerificationLevel
{
    /// <summary>Manifest, the set of files and their sizes; no hashing. For listings of large stores.</summary>
    Quick,

    /// <summary>Everything <see cref="Quick"/> checks plus every file's SHA-256. Loading always uses this.</summary>
    Full,
}
