using System.Text.Json;
using System.Text.Json.Nodes;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// <see cref="Gpt2Config"/> ↔ Hugging Face's GPT-2 config.json. Written with every key transformers'
/// GPT2Config reads, so <c>GPT2LMHeadModel.from_pretrained(dir)</c> builds the same network; read
/// leniently (absent keys take Hugging Face's defaults) but strictly about anything this
/// implementation does not compute (another activation, an untied head, cross-attention, …).
/// </summary>
internal static class Gpt2ConfigJson
{
    /// <summary>Our own section inside config.json; transformers keeps unknown keys and ignores them.</summary>
    public const string OwnSection = "prefonline";

    /// <summary>Hugging Face's default for every *_pdrop when config.json leaves it out.</summary>
    private const double HuggingFaceDefaultDropout = 0.1;

    /// <param name="torchDtype">The dtype the weights are stored in (Hugging Face's torch_dtype): float32 or bfloat16.</param>
    public static JsonObject ToJson(Gpt2Config config, string architecture, int? endOfSequenceId, int? paddingId, JsonObject? own = null, string torchDtype = "float32")
    {
        var json = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["architectures"] = new JsonArray(architecture),
            ["vocab_size"] = config.VocabularySize,
            ["n_positions"] = config.ContextLength,
            ["n_ctx"] = config.ContextLength,
            ["n_embd"] = config.Width,
            ["n_layer"] = config.Layers,
            ["n_head"] = config.Heads,
            ["n_inner"] = null,
            ["activation_function"] = "gelu_new",
            ["resid_pdrop"] = config.Dropout,
            ["embd_pdrop"] = config.Dropout,
            ["attn_pdrop"] = config.Dropout,
            ["layer_norm_epsilon"] = config.LayerNormEpsilon,
            ["initializer_range"] = Gpt2Model.InitStd,
            ["scale_attn_weights"] = true,
            ["scale_attn_by_inverse_layer_idx"] = false,
            ["reorder_and_upcast_attn"] = false,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = torchDtype,
        };
        if (endOfSequenceId is { } eos)
        {
            json["bos_token_id"] = eos;
            json["eos_token_id"] = eos;
        }
        if (paddingId is { } pad) json["pad_token_id"] = pad;
        json[OwnSection] = own ?? new JsonObject();
        return json;
    }

    public static string Serialize(JsonObject json) => json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Parses config.json text; every problem is collected (none → a valid config).</summary>
    public static Gpt2Config Parse(string text, List<string> problems)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 16, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            problems.Add($"config.json is not valid JSON ({e.Message})");
            return new Gpt2Config();
        }
        if (root is not JsonObject json)
        {
            problems.Add("config.json must hold a JSON object");
            return new Gpt2Config();
        }
        return Parse(json, problems);
    }

    public static Gpt2Config Parse(JsonObject json, List<string> problems)
    {
        var modelType = String(json, "model_type", problems);
        if (modelType is not null && modelType != "gpt2")
            problems.Add($"model_type is '{modelType}', only 'gpt2' is supported");

        var vocab = Integer(json, "vocab_size", problems, required: true);
        var positions = Integer(json, "n_positions", problems, required: false) ?? Integer(json, "n_ctx", problems, required: false);
        if (positions is null) problems.Add("config.json lacks n_positions");
        var width = Integer(json, "n_embd", problems, required: true);
        var layers = Integer(json, "n_layer", problems, required: true);
        var heads = Integer(json, "n_head", problems, required: true);
        var epsilon = Number(json, "layer_norm_epsilon", problems) ?? 1e-5;

        // One dropout rate drives our model; a checkpoint with three different rates gets the
        // largest, so fine-tuning is never less regularised than the config asked for.
        var dropouts = new[] { "resid_pdrop", "embd_pdrop", "attn_pdrop" }
            .Select(k => Number(json, k, problems) ?? HuggingFaceDefaultDropout).ToArray();

        var inner = json["n_inner"];
        if (inner is not null && width is { } w)
        {
            var n = Integer(json, "n_inner", problems, required: false);
            if (n is { } value && value != 4 * w) problems.Add($"n_inner {value} is not 4·n_embd ({4 * w}); only GPT-2's 4x MLP is supported");
        }
        var activation = String(json, "activation_function", problems);
        if (activation is not null && activation is not ("gelu_new" or "gelu_pytorch_tanh"))
            problems.Add($"activation_function '{activation}' is not supported (GPT-2's tanh GELU: gelu_new)");
        RequireFlag(json, "tie_word_embeddings", expected: true, "untied LM heads are not supported", problems);
        RequireFlag(json, "scale_attn_weights", expected: true, "unscaled attention is not supported", problems);
        RequireFlag(json, "scale_attn_by_inverse_layer_idx", expected: false, "per-layer attention scaling is not supported", problems);
        RequireFlag(json, "add_cross_attention", expected: false, "cross-attention is not supported", problems);

        if (problems.Count > 0) return new Gpt2Config();
        var config = new Gpt2Config
        {
            VocabularySize = vocab!.Value,
            ContextLength = positions!.Value,
            Width = width!.Value,
            Layers = layers!.Value,
            Heads = heads!.Value,
            Dropout = dropouts.Max(),
            LayerNormEpsilon = epsilon,
        };
        problems.AddRange(config.Problems());
        return config;
    }

    private static int? Integer(JsonObject json, string key, List<string> problems, bool required)
    {
        var node = json[key];
        if (node is null)
        {
            if (required) problems.Add($"config.json lacks {key}");
            return null;
        }
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d)
            && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
            return (int)d;
        problems.Add($"{key} must be an integer, got {Show(node)}");
        return null;
    }

    private static double? Number(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d)) return d;
        problems.Add($"{key} must be a number, got {Show(node)}");
        return null;
    }

    private static string? String(JsonObject json, string key, List<string> problems)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        problems.Add($"{key} must be a string, got {Show(node)}");
        return null;
    }

    private static void RequireFlag(JsonObject json, string key, bool expected, string why, List<string> problems)
    {
        var node = json[key];
        if (node is null) return;
        if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
        {
            if (v.GetValue<bool>() != expected) problems.Add($"{key} is {(!expected).ToString().ToLowerInvariant()}: {why}");
            return;
        }
        problems.Add($"{key} must be true or false, got {Show(node)}");
    }

    private static string Show(JsonNode node)
    {
        var text = node.ToJsonString();
        return text.Length <= 40 ? text : text[..40] + "…";
    }
}
