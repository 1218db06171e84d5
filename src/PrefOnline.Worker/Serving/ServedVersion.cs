using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Serving;

/// <summary>
/// A version the learner announced (its policy event made durable): serve <see cref="Version"/> now, whose files are
/// <see cref="Files"/> (name → path in the checkpoint store, each with the SHA-256 the event lists). A rollback announces
/// the restored version the same way: what is announced last is what serving must have.
/// </summary>
public sealed record ServedVersion(PolicyEvent Event, long Checkpoint, IReadOnlyDictionary<string, string> Files)
{
    public long Version => Event.Version;

    public string Sha256 => Event.Sha256;

    /// <summary>Same version with the same weights: handing it off again changes nothing.</summary>
    public bool SameAs(ServedVersion? other) => other is not null && other.Version == Version && other.Sha256 == Sha256;

    /// <summary>The version <paramref name="policyEvent"/> announces, its files taken from <paramref name="checkpoint"/> (the files the event lists; the weights alone when it lists none).</summary>
    public static ServedVersion Of(PolicyEvent policyEvent, Checkpoint checkpoint)
    {
        IEnumerable<string> names = policyEvent.Files.Count > 0 ? policyEvent.Files.Keys : [StateFiles.Policy];
        var files = names.ToDictionary(n => n, n => Path.GetFullPath(checkpoint.GetPath(n)), StringComparer.Ordinal);
        return new ServedVersion(policyEvent, checkpoint.Version, files);
    }

    public override string ToString() => $"v{Version} (checkpoint {CheckpointVersion.DirectoryName(Checkpoint)}, sha256 {Sha256[..12]})";
}
