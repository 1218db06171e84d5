using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors.Serialization;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Adapters;

/// <summary>
/// LoRA adapters in Hugging Face PEFT's directory layout, which PEFT (PeftModel.from_pretrained), vLLM
/// and SGLang load:
/// <list type="bullet">
/// <item><c>adapter_config.json</c>: peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, lora_dropout,
///   target_modules, fan_in_fan_out (true for GPT-2's Conv1D), bias "none", base_model_name_or_path, and
///   <see cref="BaseHashKey"/>: the <see cref="BaseWeights.Sha256"/> of the base (a key PEFT and vLLM do
///   not read);</item>
/// <item><c>adapter_model.safetensors</c>: <c>base_model.model.&lt;module path&gt;.lora_A.weight</c> [r, in]
///   and <c>….lora_B.weight</c> [out, r], module paths as in the Hugging Face model
///   (<c>transformer.h.0.attn.c_attn</c>, <c>model.layers.0.self_attn.q_proj</c>).</item>
/// </list>
/// Loading refuses, listing every problem at once, an adapter of another kind (DoRA, rsLoRA, biases,
/// modules_to_save, per-layer patterns), missing or unexpected tensors, wrong shapes, or one trained on
/// other base weights.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>adapter_config.json key holding the base weights' sha256.</summary>
    public const string BaseHashKey = "prefonline_base_weights_sha256";

    private const string KeyPrefix = "base_model.model.";

    /// <summary>Writes <paramref name="adapters"/> as a PEFT adapter directory, atomically.</summary>
    /// <param name="baseModelNameOrPath">What PEFT's base_model_name_or_path names (a hub id or the base
    /// checkpoint's path); null writes null.</param>
    public static void Save(string directory, LoraAdapters adapters, string? baseModelNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var config = ConfigJson(adapters, baseModelNameOrPath);
        AtomicDirectory.Write(directory, temp =>
        {
            AtomicDirectory.WriteDurableText(Path.Combine(temp, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            using var scope = NewDisposeScope();
            SafeTensorsFile.Write(Path.Combine(temp, WeightsFile), Tensors(adapters),
                new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" });
        });
    }

    /// <summary>The tensors exactly as <see cref="Save"/> writes them, by PEFT key (views of the adapters' own parameters).</summary>
    public static IReadOnlyDictionary<string, Tensor> Tensors(LoraAdapters adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (path, a, b) in adapters.Pairs())
        {
            var prefix = KeyPrefix + HuggingFacePath(adapters.Policy, path);
            tensors[prefix + ".lora_A.weight"] = a.detach();
            tensors[prefix + ".lora_B.weight"] = b.detach();
        }
        return tensors;
    }

    /// <summary>
    /// Reads a PEFT adapter directory and attaches it to <paramref name="policy"/> (which must have no
    /// adapters), on the policy's placement. Every problem becomes one <see cref="InvalidCheckpointException"/>.
    /// </summary>
    public static LoraAdapters Load(string directory, PolicyModel policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!Directory.Exists(directory)) throw new InvalidCheckpointException(directory, "adapter directory does not exist");
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new InvalidCheckpointException(directory, $"missing {ConfigFile}");
        if (!File.Exists(weightsPath)) throw new InvalidCheckpointException(directory, $"missing {WeightsFile}");
        var problems = new List<string>();
        var (options, baseHash) = ParseConfig(File.ReadAllText(configPath), problems);
        if (options is null || problems.Count > 0) throw new InvalidCheckpointException(directory, problems.Select(p => $"{ConfigFile}: {p}").ToList());

        LoraAdapters adapters;
        try
        {
            adapters = LoraAdapters.AttachForLoad(policy, options);
        }
        catch (ArgumentException e)
        {
            throw new InvalidCheckpointException(directory, $"{ConfigFile}: {e.Message.ReplaceLineEndings("; ")}");
        }
        try
        {
            if (baseHash is not null)
            {
                var actual = adapters.BaseWeightsSha256();
                if (!string.Equals(actual, baseHash, StringComparison.OrdinalIgnoreCase))
                    throw new InvalidCheckpointException(directory,
                        $"the adapter was trained on base weights sha256 {baseHash}, but this base's weights are sha256 {actual}");
            }
            SafeTensorsContent content;
            try
            {
                content = SafeTensorsFile.Read(weightsPath);
            }
            catch (SafeTensorsFormatException e)
            {
                throw new InvalidCheckpointException(directory, $"{WeightsFile}: {e.Problem}");
            }
            using (content)
            {
                var values = Match(adapters, content.Tensors, options.Rank, problems);
                if (problems.Count > 0) throw new InvalidCheckpointException(directory, problems.Select(p => $"{WeightsFile}: {p}").ToList());
                adapters.Load(values);
            }
            return adapters;
        }
        catch
        {
            adapters.Dispose();
            throw;
        }
    }

    /// <summary>A path of the policy's state dict as Hugging Face's *ForCausalLM names it (GPT-2's
    /// policy is its trunk, which Hugging Face nests as <c>transformer</c>).</summary>
    public static string HuggingFacePath(PolicyModel policy, string path) =>
        ReferenceEquals(policy.Trunk, policy) ? $"{policy.Config.TrunkModuleName}.{path}" : path;

    private static JsonObject ConfigJson(LoraAdapters adapters, string? baseModelNameOrPath)
    {
        var options = adapters.Options;
        // Keys as PEFT's LoraConfig.to_dict writes them (sorted), so PEFT, vLLM and SGLang read their own defaults.
        return new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["bias"] = "none",
            ["fan_in_fan_out"] = adapters.FanInFanOut,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = Number(options.Alpha),
            ["lora_dropout"] = options.Dropout,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            [BaseHashKey] = adapters.BaseWeightsSha256(),
            ["r"] = options.Rank,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = new JsonArray(options.TargetModules.Select(t => (JsonNode?)t).ToArray()),
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = false,
        };
    }

    /// <summary>PEFT declares lora_alpha an int: write an integral α as one.</summary>
    private static JsonNode Number(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < int.MaxValue ? JsonValue.Create((int)value) : JsonValue.Create(value);

    private static (LoraOptions? Options, string? BaseHash) ParseConfig(string text, List<string> problems)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not a JSON object");
        }
        catch (JsonException e)
        {
            problems.Add($"not valid JSON ({e.Message})");
            return (null, null);
        }
        var peftType = String(root, "peft_type", problems);
        if (peftType is not null && peftType != "LORA") problems.Add($"peft_type '{peftType}' is not LORA");
        var rank = Int(root, "r", problems);
        var alpha = Double(root, "lora_alpha", problems);
        var dropout = root.ContainsKey("lora_dropout") ? Double(root, "lora_dropout", problems) : 0;
        var bias = root["bias"] is JsonValue b && b.TryGetValue<string>(out var biasText) ? biasText : root["bias"] is null ? "none" : null;
        if (bias != "none") problems.Add($"bias {root["bias"]?.ToJsonString()} is not supported (only \"none\": adapters without bias terms)");
        foreach (var flag in new[] { "use_dora", "use_rslora" })
            if (root[flag] is JsonValue v && v.TryGetValue<bool>(out var on) && on) problems.Add($"{flag} true is not supported (plain LoRA only)");
        foreach (var empty in new[] { "modules_to_save", "layers_to_transform", "layers_pattern" })
            if (root[empty] is JsonNode node && !(node is JsonArray { Count: 0 }))
                problems.Add($"{empty} {node.ToJsonString()} is not supported (must be null)");
        foreach (var pattern in new[] { "rank_pattern", "alpha_pattern" })
            if (root[pattern] is JsonObject { Count: > 0 }) problems.Add($"{pattern} is not supported (must be empty: one rank and alpha for every module)");
        if (root["task_type"] is JsonValue task && task.TryGetValue<string>(out var taskType) && taskType != "CAUSAL_LM")
            problems.Add($"task_type '{taskType}' is not CAUSAL_LM");
        var targets = new List<string>();
        switch (root["target_modules"])
        {
            case JsonArray array:
                foreach (var item in array)
                    if (item is JsonValue value && value.TryGetValue<string>(out var name)) targets.Add(name);
                    else problems.Add($"target_modules holds a non-string {item?.ToJsonString() ?? "null"}");
                break;
            case JsonValue single when single.TryGetValue<string>(out var pattern):
                problems.Add($"target_modules \"{pattern}\" is a regular expression; only a list of module names is supported");
                break;
            default:
                problems.Add("target_modules is missing (a list of module names is required)");
                break;
        }
        string? baseHash = null;
        if (root[BaseHashKey] is JsonNode hashNode)
        {
            if (hashNode is JsonValue hv && hv.TryGetValue<string>(out var hash) && hash.Length == 64 && hash.All(Uri.IsHexDigit)) baseHash = hash;
            else problems.Add($"{BaseHashKey} must be 64 hexadecimal characters");
        }
        if (problems.Count > 0 || rank is null || alpha is null || dropout is null) return (null, null);
        var options = new LoraOptions { Rank = rank.Value, Alpha = alpha.Value, Dropout = dropout.Value, TargetModules = targets };
        var optionProblems = options.Problems();
        if (optionProblems.Count > 0)
        {
            problems.AddRange(optionProblems);
            return (null, null);
        }
        return (options, baseHash);
    }

    private static List<(Tensor A, Tensor B)> Match(LoraAdapters adapters, IReadOnlyDictionary<string, Tensor> tensors, int rank, List<string> problems)
    {
        var values = new List<(Tensor A, Tensor B)>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, inFeatures, outFeatures) in adapters.Shapes())
        {
            var prefix = KeyPrefix + HuggingFacePath(adapters.Policy, path);
            var a = Find(tensors, prefix + ".lora_A.weight", [rank, inFeatures], problems);
            var b = Find(tensors, prefix + ".lora_B.weight", [outFeatures, rank], problems);
            expected.Add(prefix + ".lora_A.weight");
            expected.Add(prefix + ".lora_B.weight");
            if (a is not null && b is not null) values.Add((a, b));
        }
        var unexpected = tensors.Keys.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            problems.Add($"unexpected {unexpected.Count} tensor(s) (not a LoRA pair of the targeted modules): {string.Join(", ", unexpected.Take(10))}{(unexpected.Count > 10 ? ", …" : "")}");
        return values;
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
            problems.Add($"{key} is [{string.Join(", ", tensor.shape)}], expected [{string.Join(", ", shape)}]");
            return null;
        }
        if (!is_floating_point(tensor.dtype))
        {
            problems.Add($"{key} is {tensor.dtype}, expected a floating dtype");
            return null;
        }
        return tensor;
    }

    private static string? String(JsonObject root, string key, List<string> problems)
    {
        if (root[key] is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        problems.Add($"{key} is {(root.ContainsKey(key) ? "not a string" : "missing")}");
        return null;
    }

    private static int? Int(JsonObject root, string key, List<string> problems)
    {
        if (root[key] is JsonValue v && v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var i)) return i;
        if (root[key] is JsonValue v2 && v2.TryGetValue<int>(out var j)) return j;
        problems.Add($"{key} is {(root.ContainsKey(key) ? "not an integer" : "missing")}");
        return null;
    }

    private static double? Double(JsonObject root, string key, List<string> problems)
    {
        if (root[key] is JsonValue v && v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number) return e.GetDouble();
        if (root[key] is JsonValue v2 && v2.TryGetValue<double>(out var d)) return d;
        problems.Add($"{key} is {(root.ContainsKey(key) ? "not a number" : "missing")}");
        return null;
    }
}
