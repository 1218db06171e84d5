using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Tensors;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Loads a policy from any path an operator would hand to <c>prefonline generate</c> or <c>logprobs</c>:
/// <list type="bullet">
/// <item>a Hugging Face directory (config.json beside the weights and tokenizer files) — <c>init</c>'s output,
///   a download, <c>merge</c>'s output, the <c>directory</c> serving publisher's <c>current</c> of a full fine-tune;</item>
/// <item>a PEFT adapter directory with a <c>base</c> link to its base model's Hugging Face directory (the
///   <c>directory</c> serving publisher's export of a LoRA version: <c>base → ../base-&lt;sha&gt;</c>): base + adapter, merged;</item>
/// <item>one version of a checkpoint store (<c>vNNNNNN/</c>): <see cref="LoadWeights"/> — <c>policy.safetensors</c>
///   (it carries its config.json in its metadata) or, for a LoRA version, the base <c>reference.safetensors</c> with the
///   adapter merged in; the tokenizer files lie beside them;</item>
/// <item>a checkpoint store's root: the version its <c>latest</c> pointer names.</item>
/// </list>
/// Anything else gets the Hugging Face loader's own one-line error (no config.json, ...).
/// </summary>
public static class StoredPolicy
{
    /// <summary>In an adapter export: the link to the base model's Hugging Face directory (<c>base → ../base-&lt;sha&gt;</c>).</summary>
    public const string AdapterBaseLink = "base";

    public static LoadedPolicy Load(string path, TensorPlacement? placement = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (File.Exists(Path.Combine(path, PolicyCheckpoint.ConfigFile))) return PolicyCheckpoint.Load(path, placement);
        if (IsAdapterExport(path)) return WithTokenizer(path, LoadAdapterOnBase(path, Path.Combine(path, AdapterBaseLink), placement));
        return StoreVersionOf(path) is { } version ? WithTokenizer(version, LoadWeights(version, placement)) : PolicyCheckpoint.Load(path, placement);
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
        if (IsAdapterExport(path)) return PolicyCheckpoint.ReadConfig(Path.Combine(path, AdapterBaseLink));
        if (StoreVersionOf(path) is not { } version) return null;
        // A LoRA version holds no merged policy: its config is its base's.
        return PolicyCheckpoint.ReadWeightsFileConfig(Path.Combine(version, File.Exists(Path.Combine(version, StateFiles.Policy)) ? StateFiles.Policy : StateFiles.Reference));
    }

    /// <summary>
    /// The store version <paramref name="path"/> names: itself, or the version its store's <c>latest</c> pointer names;
    /// null when it is neither a version nor a store root with a <c>latest</c> pointer (a store before its first checkpoint).
    /// </summary>
    private static string? StoreVersionOf(string path)
    {
        if (IsStoreVersion(path)) return path;
        if (!File.Exists(Path.Combine(path, CheckpointLayout.LatestPointer))) return null;
        var (latest, problem) = PointerFile.Read(path, CheckpointLayout.LatestPointer);
        if (latest is null) throw new InvalidCheckpointException(path, problem ?? "the store's 'latest' pointer is missing");
        var version = CheckpointLayout.VersionPath(path, latest.Value);
        if (!IsStoreVersion(version)) throw new InvalidCheckpointException(version, "'latest' names a version that is not in the store (deleted, or a write in progress)");
        return version;
    }

    /// <summary>
    /// The policy weights a version directory holds — a store's <c>vNNNNNN/</c> or a generator's verified copy of its
    /// policy files: <c>policy.safetensors</c> as it is (full fine-tuning), or a LoRA version's base
    /// (<c>reference.safetensors</c>) with its PEFT adapter merged in (W + (α/r)·B·A; an adapter trained on other base
    /// weights is refused by its base hash). The caller disposes the model.
    /// </summary>
    public static PolicyModel LoadWeights(string directory, TensorPlacement? placement = null)
    {
        var weights = Path.Combine(directory, StateFiles.Policy);
        if (File.Exists(weights)) return PolicyCheckpoint.LoadWeightsFile(weights, placement: placement);
        if (!HoldsAdapter(directory))
            throw new InvalidCheckpointException(directory, $"holds neither {StateFiles.Policy} nor a LoRA adapter ({PeftAdapter.ConfigFile}, {PeftAdapter.WeightsFile}) with its base ({StateFiles.Reference})");
        return MergedOnto(PolicyCheckpoint.LoadWeightsFile(Path.Combine(directory, StateFiles.Reference), placement: placement), directory);
    }

    /// <summary>True when <paramref name="directory"/> holds a LoRA version: the PEFT adapter and its base weights, no merged policy.</summary>
    public static bool HoldsAdapter(string directory) =>
        File.Exists(Path.Combine(directory, PeftAdapter.ConfigFile)) && File.Exists(Path.Combine(directory, PeftAdapter.WeightsFile))
        && File.Exists(Path.Combine(directory, StateFiles.Reference));

    private static PolicyModel LoadAdapterOnBase(string adapterDirectory, string baseDirectory, TensorPlacement? placement)
    {
        using var loaded = PolicyCheckpoint.Load(baseDirectory, placement);
        return MergedOnto(loaded.Model.Copy(), adapterDirectory);
    }

    /// <summary>Loads <paramref name="adapterDirectory"/>'s adapter onto <paramref name="model"/> and folds it in (disposing the model on failure).</summary>
    private static PolicyModel MergedOnto(PolicyModel model, string adapterDirectory)
    {
        try
        {
            PeftAdapter.Load(adapterDirectory, model).MergeAndDetach();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static LoadedPolicy WithTokenizer(string directory, PolicyModel model)
    {
        try
        {
            ITokenizer tokenizer;
            try
            {
                tokenizer = TokenizerLoader.FromDirectory(directory);
            }
            catch (TokenizerFormatException e)
            {
                throw new InvalidCheckpointException(directory, $"tokenizer: {e.Message}");
            }
            if (tokenizer.VocabularySize > model.Config.VocabularySize)
                throw new InvalidCheckpointException(directory, $"the tokenizer has {tokenizer.VocabularySize} tokens but the model's vocab_size is {model.Config.VocabularySize}");
            return new LoadedPolicy(Path.GetFullPath(directory), model, tokenizer);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static bool IsAdapterExport(string directory) =>
        File.Exists(Path.Combine(directory, PeftAdapter.ConfigFile)) && File.Exists(Path.Combine(directory, PeftAdapter.WeightsFile))
        && File.Exists(Path.Combine(directory, AdapterBaseLink, PolicyCheckpoint.ConfigFile));

    private static bool IsStoreVersion(string directory) =>
        File.Exists(Path.Combine(directory, CheckpointLayout.ManifestFileName)) && (File.Exists(Path.Combine(directory, StateFiles.Policy)) || HoldsAdapter(directory));
}
