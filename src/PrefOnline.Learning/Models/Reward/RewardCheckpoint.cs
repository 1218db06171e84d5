using System.Text.Json.Nodes;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>
/// A reward model as one safetensors file in the layout of its family's Hugging Face
/// *ForSequenceClassification (GPT-2: <c>transformer.*</c>; Llama family: <c>model.*</c>; then
/// <c>score.weight</c> and our <c>score.bias</c>), with its config.json text in the metadata. On load, a
/// file without <c>score.bias</c> (written by transformers) gets a zero bias, and old buffers are ignored.
/// A reward model with LoRA adapters is saved by <see cref="SaveAdapter"/> as what trains only (adapters and head,
/// megabytes), its frozen trunk being the base weights the caller keeps elsewhere.
/// </summary>
public static class RewardCheckpoint
{
    /// <summary>Metadata key of <see cref="SaveAdapter"/>'s file: the LoRA options as JSON (r, lora_alpha, lora_dropout, target_modules).</summary>
    public const string LoraMetadataKey = "prefonline_reward_lora";

    public static void Save(string path, RewardModel model)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [PolicyCheckpoint.ConfigMetadataKey] = ModelFamily.Serialize(ModelFamily.Of(model.Config).ToJson(model.Config, ModelRole.SequenceClassification,
                SpecialTokenIds.None, PolicyCheckpoint.OwnSection(), model.Placement.DtypeName)),
        };
        SafeTensorsFile.Write(path, model.state_dict(), metadata);
    }

    /// <summary>
    /// Writes what a reward model with LoRA adapters trains: per adapted module of the reward model's state dict
    /// <c>&lt;path&gt;.lora_A.weight</c> [r, in] and <c>&lt;path&gt;.lora_B.weight</c> [out, r], then <c>score.weight</c>
    /// [1, C] and <c>score.bias</c> [1]; the LoRA options and config.json text in the metadata. Not the trunk: it is the
    /// frozen base, stored once (reference.safetensors in a worker's checkpoint).
    /// </summary>
    public static void SaveAdapter(string path, RewardModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var adapters = model.Adapters ?? throw new ArgumentException("the reward model has no LoRA adapters: save it whole with Save", nameof(model));
        var options = adapters.Options;
        var lora = new JsonObject
        {
            ["r"] = options.Rank,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = options.Dropout,
            ["target_modules"] = new JsonArray(options.TargetModules.Select(t => (JsonNode?)t).ToArray()),
        };
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [LoraMetadataKey] = lora.ToJsonString(),
            [PolicyCheckpoint.ConfigMetadataKey] = ModelFamily.Serialize(ModelFamily.Of(model.Config).ToJson(model.Config, ModelRole.SequenceClassification,
                SpecialTokenIds.None, PolicyCheckpoint.OwnSection(), model.Placement.DtypeName)),
        };
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (modulePath, a, b) in adapters.Pairs())
        {
            tensors[modulePath + ".lora_A.weight"] = a.detach();
            tensors[modulePath + ".lora_B.weight"] = b.detach();
        }
        tensors["score.weight"] = model.Head.weight!.detach();
        tensors["score.bias"] = model.Head.bias!.detach();
        SafeTensorsFile.Write(path, tensors, metadata);
    }

    /// <summary>
    /// A reward model from <see cref="SaveAdapter"/>'s file: its frozen trunk <paramref name="basePolicy"/>'s trunk tensors
    /// themselves (the base weights the adapters were trained on, shared, not copied: see RewardModel.ShareFrozenTrunk),
    /// its adapters and head from the file, on the base's placement.
    /// The file's LoRA options must be <paramref name="expected"/> (else its optimizer state would not fit); every
    /// problem (missing, unexpected or misshapen tensor, other options) is listed in one <see cref="InvalidCheckpointException"/>.
    /// </summary>
    public static RewardModel LoadAdapter(string path, PolicyModel basePolicy, LoraOptions expected)
    {
        ArgumentNullException.ThrowIfNull(basePolicy);
        ArgumentNullException.ThrowIfNull(expected);
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "file not found");
        SafeTensorsContent content;
        try
        {
            content = SafeTensorsFile.Read(path);
        }
        catch (SafeTensorsFormatException e)
        {
            throw new InvalidCheckpointException(path, e.Problem);
        }
        using (content)
        {
            var problems = new List<string>();
            if (!content.Metadata.TryGetValue(LoraMetadataKey, out var loraText))
                throw new InvalidCheckpointException(path, $"no '{LoraMetadataKey}' metadata: not a reward adapter");
            var stored = ParseLora(loraText);
            if (stored is null) throw new InvalidCheckpointException(path, $"'{LoraMetadataKey}' metadata is not valid LoRA options: {loraText}");
            var model = new RewardModel(basePolicy.Config, init: null);
            try
            {
                model.Place(basePolicy.Placement);
                StateDicts.Load(model.Trunk, basePolicy.Trunk.state_dict());
                // Attached as configured (targets resolved), then the file's options must be the same.
                var adapters = LoraAdapters.AttachToReward(model, expected, init: null, dropoutSeed: 0);
                var resolved = adapters.Options;
                if (stored.Rank != resolved.Rank || stored.Alpha != resolved.Alpha || stored.Dropout != resolved.Dropout
                    || !stored.TargetModules.ToHashSet(StringComparer.Ordinal).SetEquals(resolved.TargetModules))
                    throw new InvalidCheckpointException(path, $"its LoRA options (r {stored.Rank}, alpha {stored.Alpha}, dropout {stored.Dropout}, targets {string.Join(",", stored.TargetModules)}) differ from Learner:Adapter's (r {resolved.Rank}, alpha {resolved.Alpha}, dropout {resolved.Dropout}, targets {string.Join(",", resolved.TargetModules)})");
                var values = new List<(Tensor A, Tensor B)>();
                var expectedKeys = new HashSet<string>(StringComparer.Ordinal) { "score.weight", "score.bias" };
                foreach (var (modulePath, inFeatures, outFeatures) in adapters.Shapes())
                {
                    var a = Find(content.Tensors, modulePath + ".lora_A.weight", [resolved.Rank, inFeatures], problems);
                    var b = Find(content.Tensors, modulePath + ".lora_B.weight", [outFeatures, resolved.Rank], problems);
                    expectedKeys.Add(modulePath + ".lora_A.weight");
                    expectedKeys.Add(modulePath + ".lora_B.weight");
                    if (a is not null && b is not null) values.Add((a, b));
                }
                var weight = Find(content.Tensors, "score.weight", [1, model.Config.Width], problems);
                var bias = Find(content.Tensors, "score.bias", [1], problems);
                var unexpected = content.Tensors.Keys.Where(k => !expectedKeys.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
                if (unexpected.Count > 0) problems.Add($"unexpected tensor(s): {string.Join(", ", unexpected.Take(10))}{(unexpected.Count > 10 ? ", …" : "")}");
                if (problems.Count > 0) throw new InvalidCheckpointException(path, problems);
                adapters.Load(values);
                model.ShareFrozenTrunk(basePolicy);
                using (no_grad())
                {
                    model.Head.weight!.copy_(weight!);
                    model.Head.bias!.copy_(bias!);
                }
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
    }

    private static LoraOptions? ParseLora(string text)
    {
        try
        {
            var root = JsonNode.Parse(text) as JsonObject;
            if (root is null) return null;
            var options = new LoraOptions
            {
                Rank = root["r"]!.GetValue<int>(),
                Alpha = root["lora_alpha"]!.GetValue<double>(),
                Dropout = root["lora_dropout"]!.GetValue<double>(),
                TargetModules = root["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).ToList(),
            };
            return options.Problems().Count == 0 ? options : null;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static Tensor? Find(IReadOnlyDictionary<string, Tensor> tensors, string key, long[] shape, List<string> problems)
    {
        if (!tensors.TryGetValue(key, out var tensor))
        {
            problems.Add($"missing {key}");
            return null;
        }
        if (!tensor.shape.SequenceEqual(shape))
        {
            problems.Add($"{key} is [{WeightFiles.Dims(tensor)}], expected [{string.Join(", ", shape)}]");
            return null;
        }
        if (!tensor.is_floating_point())
        {
            problems.Add($"{key} is {tensor.dtype}, not a floating-point tensor");
            return null;
        }
        return tensor;
    }

    /// <param name="config">The trunk's shape when the file's metadata does not carry it.</param>
    /// <param name="placement">Where the model goes (CPU float32 by default); the file's dtype converts to it.</param>
    public static RewardModel Load(string path, DecoderConfig? config = null, TensorPlacement? placement = null)
    {
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "file not found");
        var problems = new List<string>();
        if (config is null)
        {
            SafeTensorsHeader header;
            try
            {
                header = SafeTensorsFile.ReadHeader(path);
            }
            catch (SafeTensorsFormatException e)
            {
                throw new InvalidCheckpointException(path, e.Problem);
            }
            if (!header.Metadata.TryGetValue(PolicyCheckpoint.ConfigMetadataKey, out var text))
                throw new InvalidCheckpointException(path, $"no '{PolicyCheckpoint.ConfigMetadataKey}' metadata: pass the config");
            config = ModelFamily.ParseConfig(text, problems);
            if (config is null || problems.Count > 0) throw new InvalidCheckpointException(path, problems);
        }

        var content = new List<SafeTensorsContent>();
        var model = new RewardModel(config, init: null);
        try
        {
            model.Place(placement ?? TensorPlacement.Cpu);
            using var scope = NewDisposeScope();
            var raw = WeightFiles.ReadFloating([path], content, problems);
            var all = ModelFamily.Of(config).RewardTensors(raw, config, problems);
            if (!all.ContainsKey("score.bias")) all["score.bias"] = zeros([1]);
            if (problems.Count == 0) WeightFiles.Check(model.state_dict(), all, problems);
            if (problems.Count > 0) throw new InvalidCheckpointException(path, problems);
            WeightFiles.CopyInto(model, all);
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
}
