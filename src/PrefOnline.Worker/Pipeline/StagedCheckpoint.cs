using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// A consistent snapshot of the learning state, written to files in <see cref="Directory"/> by one work
/// item on the tensor thread, with the input offsets it has absorbed. The learner turns it into a
/// checkpoint draft; nothing here changes afterwards.
/// </summary>
/// <param name="Directory">The staging directory (delete when the checkpoint is written).</param>
/// <param name="Files">Artefact name → staged path.</param>
/// <param name="Offsets">Resume offsets of every input the state has read from.</param>
/// <param name="Metrics">Numbers for the manifest (shown by <c>prefonline checkpoint list</c>).</param>
/// <param name="PolicyVersion">The published policy version the snapshot's weights carry.</param>
/// <param name="PolicyChanged">True when these weights are new (an accepted update, or the first checkpoint).</param>
/// <param name="Audit">The labels listed in the audit artefact (empty when the audit is off), taken from the state.</param>
/// <param name="Shared">The names among <paramref name="Files"/> that do not change from version to version (the frozen
/// reference or LoRA base, the tokenizer files): stored once in the store's blobs and linked into each version.</param>
public sealed record StagedCheckpoint(
    string Directory,
    IReadOnlyDictionary<string, string> Files,
    IReadOnlyList<ResumeOffset> Offsets,
    IReadOnlyDictionary<string, double> Metrics,
    long PolicyVersion,
    bool PolicyChanged,
    IReadOnlyList<AbsorbedLabel> Audit,
    IReadOnlySet<string> Shared)
{
    /// <summary>Labels listed in the audit artefact (0 when the audit is off).</summary>
    public int AuditedLabels => Audit.Count;
}
