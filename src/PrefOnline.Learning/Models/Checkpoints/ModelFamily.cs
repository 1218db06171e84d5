using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>What a checkpoint says it is: a causal LM (the policy) or a sequence classifier (the reward model).</summary>
internal enum ModelRole
{
    CausalLm,
    SequenceClassification,
}

/// <summary>Special token ids written into config.json (Hugging Face reads them from there for generation).
/// BeginningOfSequence: the token the tokenizer puts before every prompt, when it has one (Llama 3); GPT-2's
/// config.json names its end-of-sequence token as bos_token_id instead, as Hugging Face's own GPT-2 files do.</summary>
internal sealed record SpecialTokenIds(int? EndOfSequence, int? Padding, int? BeginningOfSequence = null)
{
    public static SpecialTokenIds None { get; } = new(null, null);
}

/// <summary>
/// Everything checkpoint I/O knows about one architecture: which config.json <c>model_type</c> values it
/// reads, how it parses and writes that file, and how a checkpoint's tensor names map onto our modules'
/// state-dict names (prefixes, tied heads, old buffers). <see cref="ParseConfig(JsonObject, List{string})"/>
/// picks the family by <c>model_type</c> (or <c>architectures</c>), so loaders never switch on families.
/// </summary>
internal abstract class ModelFamily
{
    /// <summary>Every family this build reads.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } = [Gpt2ConfigJson.Family, LlamaConfigJson.Family];

    /// <summary>config.json <c>model_type</c> values of this family.</summary>
    public abstract IReadOnlyList<string> ModelTypes { get; }

    /// <summary><c>architectures</c> entries that identify the family when <c>model_type</c> is absent.</summary>
    public abstract IReadOnlyList<string> Architectures { get; }

    /// <summary>Parses config.json; every problem is collected, naming its key.</summary>
    public abstract DecoderConfig Parse(JsonObject json, List<string> problems);

    /// <summary>config.json for <paramref name="config"/> in <paramref name="role"/>, with every key the
    /// family's transformers config class reads, plus our own section.</summary>
    public abstract JsonObject ToJson(DecoderConfig config, ModelRole role, SpecialTokenIds tokens, JsonObject own, string torchDtype);

    /// <summary>A checkpoint's tensors under the policy's state-dict names: prefixes added or stripped,
    /// buffers that carry no learned state dropped, a tied head folded into the embedding. Names the family
    /// cannot place are kept as they are, so the name check reports them as unexpected.</summary>
    public abstract Dictionary<string, Tensor> PolicyTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems);

    /// <summary>A reward checkpoint's tensors under <see cref="Reward.RewardModel"/>'s names (trunk under
    /// its Hugging Face name, <c>score.*</c>).</summary>
    public abstract Dictionary<string, Tensor> RewardTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems);

    /// <summary>The family of a config record.</summary>
    public static ModelFamily Of(DecoderConfig config) =>
        All.FirstOrDefault(f => f.ModelTypes.Contains(config.ModelType))
        ?? throw new ArgumentException($"no checkpoint format for model_type '{config.ModelType}'");

    /// <summary>Every model_type this build reads, for messages.</summary>
    public static string KnownModelTypes => string.Join(", ", All.SelectMany(f => f.ModelTypes));

    /// <summary>Parses config.json text (any family); every problem is collected.</summary>
    public static DecoderConfig? ParseConfig(string text, List<string> problems)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 16, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            problems.Add($"config.json is not valid JSON ({e.Message})");
            return null;
        }
        if (root is not JsonObject json)
        {
            problems.Add("config.json must hold a JSON object");
            return null;
        }
        return ParseConfig(json, problems);
    }

    /// <summary>
    /// Chooses the family by <c>model_type</c>; without one, by the first <c>architectures</c> entry; with
    /// neither, GPT-2 (configs written by plain PyTorch scripts for the built-in models). An unknown value is
    /// refused, naming the key and what is supported.
    /// </summary>
    public static DecoderConfig? ParseConfig(JsonObject json, List<string> problems)
    {
        ModelFamily? family;
        var modelType = json["model_type"];
        if (modelType is not null)
        {
            if (modelType is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
            {
                problems.Add($"model_type must be a string, got {Show(modelType)}");
                return null;
            }
            var name = value.GetValue<string>();
            family = All.FirstOrDefault(f => f.ModelTypes.Contains(name));
            if (family is null)
            {
                problems.Add($"model_type '{name}' is not supported (supported: {KnownModelTypes})");
                return null;
            }
        }
        else if (json["architectures"] is JsonArray { Count: > 0 } architectures)
        {
            var first = architectures[0] is JsonValue a && a.GetValueKind() == JsonValueKind.String ? a.GetValue<string>() : Show(architectures[0]!);
            family = All.FirstOrDefault(f => f.Architectures.Contains(first));
            if (family is null)
            {
                problems.Add($"architectures '{first}' is not supported and config.json has no model_type (supported: {KnownModelTypes})");
                return null;
            }
        }
        else
        {
            family = Gpt2ConfigJson.Family;
        }
        var config = family.Parse(json, problems);
        return problems.Count == 0 ? config : null;
    }

    public static string Serialize(JsonObject json) => json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>A JSON value cut to 40 characters for messages.</summary>
    public static string Show(JsonNode? node)
    {
        var text = node?.ToJsonString() ?? "null";
        return text.Length <= 40 ? text : text[..40] + "…";
    }
}

/// <summary>Typed reads of config.json keys, each problem naming its key, shared by the families.</summary>
internal static class ModelFamilyJson
{
    /// <summary>Our own section inside config.json; transformers keeps unknown keys and ignores them.</summary>
    public const string OwnSection = "prefonline";

    public static int? Integer(JsonObject json, string key, List<string> problems, bool required)
    {
        var node = json[key];
        if (node is null)
        {
            if (required) problems.Add($"config.json lacks {key}");
            return null;
        }
        if (IsInteger(node, out var value)) return value;
        problems.Add($"{key} must be an integer, got {ModelFamily.Show(node)}");
        return null;
    }

    public static double? Number(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d)) return d;
        problems.Add($"{key} must be a number, got {ModelFamily.Show(node)}");
        return null;
    }

    public static string? String(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        problems.Add($"{key} must be a string, got {ModelFamily.Show(node)}");
        return null;
    }

    /// <summary>A true/false key; null when absent.</summary>
    public static bool? Flag(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
        problems.Add($"{key} must be true or false, got {ModelFamily.Show(node)}");
        return null;
    }

    public static void RequireFlag(JsonObject json, string key, bool expected, string why, List<string> problems)
    {
        if (Flag(json, key, problems) is { } value && value != expected)
            problems.Add($"{key} is {(!expected).ToString().ToLowerInvariant()}: {why}");
    }

    /// <summary>A token id key: an integer, a list of integers (Llama 3's eos_token_id) or null.</summary>
    public static IReadOnlyList<int> TokenIds(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return [];
        if (IsInteger(node, out var single)) return [single];
        if (node is JsonArray array)
        {
            var ids = new List<int>();
            foreach (var item in array)
            {
                if (item is not null && IsInteger(item, out var id)) ids.Add(id);
                else
                {
                    problems.Add($"{key} must be an integer or a list of integers, got {ModelFamily.Show(node)}");
                    return [];
                }
            }
            return ids;
        }
        problems.Add($"{key} must be an integer or a list of integers, got {ModelFamily.Show(node)}");
        return [];
    }

    private static bool IsInteger(JsonNode node, out int value)
    {
        value = 0;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d)
            && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
        {
            value = (int)d;
            return true;
        }
        return false;
    }
}
