using System.Text.Json.Nodes;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// A policy in the Hugging Face layout of its family, so a checkpoint moves freely between this worker
/// and PyTorch / transformers:
/// <list type="bullet">
/// <item><c>config.json</c>: the family's keys (GPT-2: model_type gpt2, n_embd, n_layer, …; Llama family:
///   model_type llama / qwen2 / qwen3, hidden_size, num_key_value_heads, rope_theta, rope_scaling, …) plus
///   a <c>prefonline</c> section; model_type (or architectures) picks the family;</item>
/// <item><c>model.safetensors</c>: the policy's tensors under Hugging Face's names, in the model's own
///   dtype (float32 or bfloat16; config.json's torch_dtype says which); on load any floating dtype
///   (float16 too) converts to the placement's, shards listed by <c>model.safetensors.index.json</c> are
///   read, and the family's variants are accepted (GPT-2: a <c>transformer.</c> prefix, the old
///   attention-mask buffers, a tied <c>lm_head.weight</c>; Llama: old rotary buffers, a tied head saved anyway);</item>
/// <item>the tokenizer's files (GPT-2 BPE vocab.json + merges.txt, or the byte tokenizer).</item>
/// </list>
/// Any problem becomes one <see cref="InvalidCheckpointException"/> listing all of them.
/// </summary>
public static class PolicyCheckpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = WeightFiles.SingleFile;

    /// <summary>safetensors metadata key holding the config.json text in a bare weights file.</summary>
    public const string ConfigMetadataKey = "prefonline.config";

    /// <summary>The config a checkpoint directory declares (validated; its model_type picks the family).</summary>
    public static DecoderConfig ReadConfig(string directory)
    {
        RequireDirectory(directory);
        var path = Path.Combine(directory, ConfigFile);
        if (!File.Exists(path)) throw new InvalidCheckpointException(directory, $"missing {ConfigFile}");
        var problems = new List<string>();
        var config = ModelFamily.ParseConfig(File.ReadAllText(path), problems);
        if (config is null || problems.Count > 0) throw new InvalidCheckpointException(directory, problems.Select(p => $"{ConfigFile}: {p}").ToList());
        return config;
    }

    /// <summary>Model and tokenizer of a checkpoint directory, the model on <paramref name="placement"/>
    /// (CPU float32 by default); the caller disposes the result.</summary>
    public static LoadedPolicy Load(string directory, TensorPlacement? placement = null) => WithTokenizer(directory, LoadModel(directory, placement));

    /// <summary>A file written by <see cref="SaveWeightsFile"/> (a checkpoint store's policy) with the tokenizer
    /// files beside it; the caller disposes the result.</summary>
    public static LoadedPolicy LoadWeightsFileWithTokenizer(string path, TensorPlacement? placement = null) =>
        WithTokenizer(Path.GetDirectoryName(Path.GetFullPath(path))!, LoadWeightsFile(path, config: null, placement));

    /// <summary>Pairs <paramref name="model"/> with <paramref name="directory"/>'s tokenizer (disposing the model if that fails).</summary>
    private static LoadedPolicy WithTokenizer(string directory, PolicyModel model)
    {
        try
        {
            var tokenizer = CheckpointTokenizer.Load(directory);
            if (tokenizer.VocabularySize > model.Config.VocabularySize)
                throw new InvalidCheckpointException(directory,
                    $"the tokenizer has {tokenizer.VocabularySize} tokens but the model's vocab_size is {model.Config.VocabularySize}");
            return new LoadedPolicy(Path.GetFullPath(directory), model, tokenizer);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Only the model (config.json + weights) of a checkpoint directory, on <paramref name="placement"/>
    /// (CPU float32 by default); the caller disposes it.</summary>
    public static PolicyModel LoadModel(string directory, TensorPlacement? placement = null)
    {
        var config = ReadConfig(directory);
        var problems = new List<string>();
        var files = WeightFiles.Locate(directory, problems);
        if (problems.Count > 0) throw new InvalidCheckpointException(directory, problems);
        return LoadWeights(directory, files, config, placement);
    }

    /// <summary>
    /// Writes <paramref name="model"/> and <paramref name="tokenizer"/> as a checkpoint directory,
    /// atomically: readers see the old directory or the complete new one, never half of one.
    /// </summary>
    public static void Save(string directory, PolicyModel model, ITokenizer tokenizer)
    {
        if (tokenizer.VocabularySize > model.Config.VocabularySize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabularySize} tokens but the model only {model.Config.VocabularySize}");
        AtomicDirectory.Write(directory, temp =>
        {
            var tokens = new SpecialTokenIds(tokenizer.EndOfSequenceId, tokenizer.PaddingId, tokenizer.BeginningOfSequenceId);
            var json = ModelFamily.Of(model.Config).ToJson(model.Config, ModelRole.CausalLm, tokens, OwnSection(), model.Placement.DtypeName);
            AtomicDirectory.WriteDurableText(Path.Combine(temp, ConfigFile), ModelFamily.Serialize(json));
            SafeTensorsFile.Write(Path.Combine(temp, WeightsFile), model.state_dict(), HuggingFaceMetadata());
            CheckpointTokenizer.Save(tokenizer, temp);
        });
    }

    /// <summary>
    /// The weights alone as one safetensors file (Hugging Face names), with the config.json text in
    /// its metadata so <see cref="LoadWeightsFile"/> needs nothing else. For checkpoint stores that
    /// keep the tokenizer and optimizer beside it themselves.
    /// </summary>
    public static void SaveWeightsFile(string path, PolicyModel model)
    {
        var metadata = HuggingFaceMetadata();
        metadata[ConfigMetadataKey] = ModelFamily.Serialize(
            ModelFamily.Of(model.Config).ToJson(model.Config, ModelRole.CausalLm, SpecialTokenIds.None, OwnSection(), model.Placement.DtypeName));
        SafeTensorsFile.Write(path, model.state_dict(), metadata);
    }

    /// <summary>Loads a file written by <see cref="SaveWeightsFile"/>, or any safetensors file of a
    /// supported family when <paramref name="config"/> is given, onto <paramref name="placement"/> (CPU float32 by default).</summary>
    public static PolicyModel LoadWeightsFile(string path, DecoderConfig? config = null, TensorPlacement? placement = null)
    {
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "file not found");
        return LoadWeights(path, [path], config ?? ReadWeightsFileConfig(path), placement);
    }

    /// <summary>The config a file written by <see cref="SaveWeightsFile"/> carries in its metadata (the header alone is read).</summary>
    public static DecoderConfig ReadWeightsFileConfig(string path)
    {
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "file not found");
        SafeTensorsHeader header;
        try
        {
            header = SafeTensorsFile.ReadHeader(path);
        }
        catch (SafeTensorsFormatException e)
        {
            throw new InvalidCheckpointException(path, e.Problem);
        }
        if (!header.Metadata.TryGetValue(ConfigMetadataKey, out var text))
            throw new InvalidCheckpointException(path, $"no '{ConfigMetadataKey}' metadata: pass the config, or load the checkpoint directory instead");
        var problems = new List<string>();
        var config = ModelFamily.ParseConfig(text, problems);
        if (config is null || problems.Count > 0) throw new InvalidCheckpointException(path, problems);
        return config;
    }

    private static PolicyModel LoadWeights(string where, IReadOnlyList<string> files, DecoderConfig config, TensorPlacement? placement)
    {
        var problems = new List<string>();
        var content = new List<SafeTensorsContent>();
        var model = config.CreatePolicy(init: null);
        try
        {
            model.Place(placement ?? TensorPlacement.Cpu);
            using var scope = NewDisposeScope();
            var raw = WeightFiles.ReadFloating(files, content, problems);
            var tensors = ModelFamily.Of(config).PolicyTensors(raw, config, problems);
            if (problems.Count == 0) WeightFiles.Check(model.state_dict(), tensors, problems);
            if (problems.Count > 0) throw new InvalidCheckpointException(where, problems);
            WeightFiles.CopyInto(model, tensors);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var c in content) c.Dispose();
        }
    }

    private static void RequireDirectory(string directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("checkpoint directory path is empty");
        if (File.Exists(directory)) throw new InvalidCheckpointException(directory, "is a file, not a checkpoint directory");
        if (!Directory.Exists(directory)) throw new InvalidCheckpointException(directory, "directory does not exist");
    }

    /// <summary>transformers refuses safetensors whose metadata lacks format=pt.</summary>
    private static Dictionary<string, string> HuggingFaceMetadata() => new(StringComparer.Ordinal) { ["format"] = "pt" };

    internal static JsonObject OwnSection() => new() { ["format_version"] = 1, ["written_by"] = "prefonline" };
}
