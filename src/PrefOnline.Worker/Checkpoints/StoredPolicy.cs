using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Loads a policy from any path an operator would hand to <c>prefonline generate</c> or <c>logprobs</c>:
/// <list type="bullet">
/// <item>a Hugging Face directory (config.json beside the weights and tokenizer files) — <c>init</c>'s output,
///   a download, <c>merge</c>'s output, the <c>directory</c> serving publisher's <c>current</c>;</item>
/// <item>one version of a checkpoint store (<c>vNNNNNN/</c>: <c>policy.safetensors</c> carries its config.json
///   in its metadata, the tokenizer files lie beside it);</item>
/// <item>a checkpoint store's root: the version its <c>latest</c> pointer names.</item>
/// </list>
/// Anything else gets the Hugging Face loader's own one-line error (no config.json, ...).
/// </summary>
public static class StoredPolicy
{
    public static LoadedPolicy Load(string path, TensorPlacement? placement = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (File.Exists(Path.Combine(path, PolicyCheckpoint.ConfigFile))) return PolicyCheckpoint.Load(path, placement);

        var version = path;
        if (!IsStoreVersion(path) && File.Exists(Path.Combine(path, CheckpointLayout.LatestPointer)))
        {
            var (latest, problem) = PointerFile.Read(path, CheckpointLayout.LatestPointer);
            if (latest is null) throw new InvalidCheckpointException(path, problem ?? "the store's 'latest' pointer is missing");
            version = CheckpointLayout.VersionPath(path, latest.Value);
            if (!IsStoreVersion(version)) throw new InvalidCheckpointException(version, "'latest' names a version that is not in the store (deleted, or a write in progress)");
        }
        if (!IsStoreVersion(version)) return PolicyCheckpoint.Load(path, placement);

        return PolicyCheckpoint.LoadWeightsFileWithTokenizer(Path.Combine(version, StateFiles.Policy), placement);
    }

    /// <summary>
    /// The config of the policy <see cref="Load"/> would load from <paramref name="path"/>, read without its weights; null
    /// when it holds none yet (no config.json, not a store version, no 'latest' pointer: a store before its first
    /// checkpoint). For start-up checks that depend on the model's family.
    /// </summary>
    public static DecoderConfig? ReadConfig(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (File.Exists(Path.Combine(path, PolicyCheckpoint.ConfigFile))) return PolicyCheckpoint.ReadConfig(path);
        var version = path;
        if (!IsStoreVersion(path))
        {
            if (!File.Exists(Path.Combine(path, CheckpointLayout.LatestPointer))) return null;
            var (latest, problem) = PointerFile.Read(path, CheckpointLayout.LatestPointer);
            if (latest is null) throw new InvalidCheckpointException(path, problem ?? "the store's 'latest' pointer is missing");
            version = CheckpointLayout.VersionPath(path, latest.Value);
        }
        return IsStoreVersion(version) ? PolicyCheckpoint.ReadWeightsFileConfig(Path.Combine(version, StateFiles.Policy)) : PolicyCheckpoint.ReadConfig(version);
    }

    private static bool IsStoreVersion(string directory) =>
        File.Exists(Path.Combine(directory, CheckpointLayout.ManifestFileName)) && File.Exists(Path.Combine(directory, StateFiles.Policy));
}
