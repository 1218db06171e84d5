using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// <see cref="LlamaConfig"/> ↔ Hugging Face's config.json for model_type llama, qwen2, qwen3 and mistral
/// (SmolLM is llama). Written with every key transformers' LlamaConfig / Qwen2Config / Qwen3Config / MistralConfig reads, so
/// <c>AutoModelForCausalLM.from_pretrained(dir)</c> builds the same network. Read with transformers' own
/// defaults for absent keys, and strictly about every key that changes the math this implementation does
/// not compute — another activation, sliding-window attention, partial rotary embeddings, an unsupported
/// rope_scaling type, attention dropout, quantisation — each refused naming its key.
/// </summary>
internal static partial class LlamaConfigJson
{
    private static readonly Dictionary<string, (string CausalLm, string Classifier)> ArchitectureNames = new(StringComparer.Ordinal)
    {
        ["llama"] = ("LlamaForCausalLM", "LlamaForSequenceClassification"),
        ["qwen2"] = ("Qwen2ForCausalLM", "Qwen2ForSequenceClassification"),
        ["qwen3"] = ("Qwen3ForCausalLM", "Qwen3ForSequenceClassification"),
        ["mistral"] = ("MistralForCausalLM", "MistralForSequenceClassification"),
    };

    /// <summary>The Llama family for checkpoint I/O (after the architecture names its constructor reads).</summary>
    public static ModelFamily Family { get; } = new LlamaFamily();

    /// <summary>transformers' defaults where config.json is silent (LlamaConfig, Qwen2Config, Qwen3Config, MistralConfig).</summary>
    private static (int Positions, double Epsilon, double Theta) Defaults(string modelType) => modelType switch
    {
        "llama" => (2048, 1e-6, 10_000),
        "mistral" => (4096 * 32, 1e-6, 10_000),
        _ => (32_768, 1e-6, 10_000),
    };

    /// <summary>Qwen3Config's head_dim when config.json leaves it out (not hidden_size / num_attention_heads).</summary>
    private const int Qwen3DefaultHeadDim = 128;

    /// <summary>MistralConfig's sliding_window when config.json leaves it out.</summary>
    private const int MistralDefaultSlidingWindow = 4096;

    public static JsonObject ToJson(LlamaConfig config, ModelRole role, SpecialTokenIds tokens, JsonObject own, string torchDtype)
    {
        var (causal, classifier) = ArchitectureNames[config.Family];
        var json = new JsonObject
        {
            ["model_type"] = config.Family,
            ["architectures"] = new JsonArray(role == ModelRole.CausalLm ? causal : classifier),
            ["vocab_size"] = config.VocabularySize,
            ["hidden_size"] = config.Width,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.Layers,
            ["num_attention_heads"] = config.Heads,
            ["num_key_value_heads"] = config.KeyValueHeadCount,
            ["head_dim"] = config.HeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = config.ContextLength,
            ["rms_norm_eps"] = config.RmsNormEpsilon,
            ["rope_theta"] = config.RopeTheta,
            ["rope_scaling"] = config.RopeScaling is { } scaling ? RopeScalingJson(scaling) : null,
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["attention_dropout"] = 0.0,
            ["initializer_range"] = LlamaConfig.InitStd,
            ["use_cache"] = true,
            ["torch_dtype"] = torchDtype,
        };
        if (config.Family != "qwen2") json["attention_bias"] = config.AttentionBias;
        if (config.Family == "llama") json["mlp_bias"] = config.MlpBias;
        if (config.Family == "mistral") json["sliding_window"] = null;
        else if (config.Family != "llama")
        {
            json["use_sliding_window"] = false;
            json["sliding_window"] = null;
            json["max_window_layers"] = config.Layers;
        }
        if (tokens.BeginningOfSequence is { } bos) json["bos_token_id"] = bos;
        if (tokens.EndOfSequence is { } eos) json["eos_token_id"] = eos;
        if (tokens.Padding is { } pad) json["pad_token_id"] = pad;
        if (role == ModelRole.SequenceClassification) json["num_labels"] = 1;
        json[ModelFamilyJson.OwnSection] = own;
        return json;
    }

    private static JsonObject RopeScalingJson(RopeScaling scaling)
    {
        var json = new JsonObject { ["rope_type"] = scaling.Type, ["factor"] = scaling.Factor };
        if (scaling.Type == "llama3")
        {
            json["low_freq_factor"] = scaling.LowFrequencyFactor;
            json["high_freq_factor"] = scaling.HighFrequencyFactor;
            json["original_max_position_embeddings"] = scaling.OriginalContextLength;
        }
        return json;
    }

    public static LlamaConfig Parse(JsonObject json, List<string> problems)
    {
        var modelType = ModelFamilyJson.String(json, "model_type", problems) ?? InferModelType(json);
        if (!LlamaConfig.ModelTypes.Contains(modelType))
        {
            problems.Add($"model_type '{modelType}' is not a Llama-family type ({string.Join(", ", LlamaConfig.ModelTypes)})");
            return new LlamaConfig();
        }
        var defaults = Defaults(modelType);

        var vocab = ModelFamilyJson.Integer(json, "vocab_size", problems, required: true);
        var width = ModelFamilyJson.Integer(json, "hidden_size", problems, required: true);
        var intermediate = ModelFamilyJson.Integer(json, "intermediate_size", problems, required: true);
        var layers = ModelFamilyJson.Integer(json, "num_hidden_layers", problems, required: true);
        var heads = ModelFamilyJson.Integer(json, "num_attention_heads", problems, required: true);
        var keyValueHeads = ModelFamilyJson.Integer(json, "num_key_value_heads", problems, required: false) ?? heads;
        // Absent head_dim: hidden_size / num_attention_heads, except Qwen3Config whose default is 128. Kept null when it
        // equals hidden_size / num_attention_heads, so a config read back equals the one written.
        var headDim = ModelFamilyJson.Integer(json, "head_dim", problems, required: false) ?? (modelType == "qwen3" ? Qwen3DefaultHeadDim : null);
        if (headDim is { } given && heads is > 0 && width is { } hidden && given * heads == hidden) headDim = null;
        var positions = ModelFamilyJson.Integer(json, "max_position_embeddings", problems, required: false) ?? defaults.Positions;
        var epsilon = ModelFamilyJson.Number(json, "rms_norm_eps", problems) ?? defaults.Epsilon;
        var tied = ModelFamilyJson.Flag(json, "tie_word_embeddings", problems) ?? false;
        // Qwen2 has no attention_bias key (its q/k/v biases are fixed); Qwen2/3 and Mistral have no mlp_bias, Mistral no
        // attention_bias. A family that has no such biases yet says true is refused rather than guessed at.
        var attentionBias = modelType == "qwen2" ? false : ModelFamilyJson.Flag(json, "attention_bias", problems) ?? false;
        if (modelType == "mistral" && attentionBias)
            problems.Add("attention_bias is true: mistral's attention has no biases in transformers (use model_type llama for a biased attention)");
        var mlpBias = ModelFamilyJson.Flag(json, "mlp_bias", problems) ?? false;
        if (modelType != "llama" && mlpBias) problems.Add($"mlp_bias is true: {modelType}'s MLP has no biases in transformers (only llama reads mlp_bias)");
        mlpBias &= modelType == "llama";

        var activation = ModelFamilyJson.String(json, "hidden_act", problems) ?? "silu";
        if (activation != "silu") problems.Add($"hidden_act '{activation}' is not supported (the Llama family's SwiGLU uses silu)");
        if (ModelFamilyJson.Number(json, "attention_dropout", problems) is { } dropout && dropout != 0)
            problems.Add($"attention_dropout {dropout.ToString(CultureInfo.InvariantCulture)} is not supported (0 only: on-policy log-probs must be exact)");
        if (ModelFamilyJson.Number(json, "partial_rotary_factor", problems) is { } partial && partial != 1)
            problems.Add($"partial_rotary_factor {partial.ToString(CultureInfo.InvariantCulture)} is not supported (rotary embeddings over the whole head only)");
        if (modelType is "qwen2" or "qwen3")
            ModelFamilyJson.RequireFlag(json, "use_sliding_window", expected: false, "sliding-window attention is not supported", problems);
        if (modelType == "mistral")
        {
            // Mistral always applies its window; one at least as long as the context never hides a key, so it is plain causal attention.
            var window = json.ContainsKey("sliding_window") ? ModelFamilyJson.Integer(json, "sliding_window", problems, required: false) : MistralDefaultSlidingWindow;
            if (window is { } w && w < positions)
                problems.Add($"sliding_window {w} is shorter than max_position_embeddings {positions}: sliding-window attention is not supported (set it null)");
        }
        if (json["layer_types"] is JsonArray layerTypes && layerTypes.Any(t => t?.ToJsonString() != "\"full_attention\""))
            problems.Add("layer_types lists layers other than full_attention: sliding-window attention is not supported");
        if (json["quantization_config"] is not null) problems.Add("quantization_config is present: quantised checkpoints are not supported (use float32 or bfloat16 weights)");
        ModelFamilyJson.TokenIds(json, "bos_token_id", problems);
        ModelFamilyJson.TokenIds(json, "eos_token_id", problems);
        ModelFamilyJson.TokenIds(json, "pad_token_id", problems);

        var (theta, scaling) = ReadRope(json, defaults.Theta, problems);
        if (problems.Count > 0) return new LlamaConfig();
        var config = new LlamaConfig
        {
            Family = modelType,
            VocabularySize = vocab!.Value,
            Width = width!.Value,
            IntermediateSize = intermediate!.Value,
            Layers = layers!.Value,
            Heads = heads!.Value,
            KeyValueHeadCount = keyValueHeads!.Value,
            HeadDimension = headDim,
            ContextLength = positions,
            RmsNormEpsilon = epsilon,
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = tied,
            AttentionBias = attentionBias,
            MlpBias = mlpBias,
        };
        problems.AddRange(config.Problems());
        return config;
    }

    /// <summary>rope_theta and rope_scaling (transformers ≤ 4.x), or rope_parameters (transformers 5, which
    /// holds both); rope_type "default" is plain RoPE.</summary>
    private static (double Theta, RopeScaling? Scaling) ReadRope(JsonObject json, double defaultTheta, List<string> problems)
    {
        var theta = ModelFamilyJson.Number(json, "rope_theta", problems);
        var key = "rope_scaling";
        var node = json[key];
        if (node is null && json["rope_parameters"] is JsonObject parameters)
        {
            key = "rope_parameters";
            node = parameters;
            theta ??= ModelFamilyJson.Number(parameters, "rope_theta", problems);
        }
        if (node is null) return (theta ?? defaultTheta, null);
        if (node is not JsonObject scaling)
        {
            problems.Add($"{key} must be an object or null, got {ModelFamily.Show(node)}");
            return (theta ?? defaultTheta, null);
        }
        var type = ModelFamilyJson.String(scaling, "rope_type", problems) ?? ModelFamilyJson.String(scaling, "type", problems);
        switch (type)
        {
            case null or "default":
                return (theta ?? defaultTheta, null);
            case "linear":
            {
                var factor = ModelFamilyJson.Number(scaling, "factor", problems);
                if (factor is null) problems.Add($"{key}.factor is missing");
                return (theta ?? defaultTheta, new RopeScaling("linear", factor ?? 1));
            }
            case "llama3":
            {
                var factor = ModelFamilyJson.Number(scaling, "factor", problems);
                var low = ModelFamilyJson.Number(scaling, "low_freq_factor", problems);
                var high = ModelFamilyJson.Number(scaling, "high_freq_factor", problems);
                var original = ModelFamilyJson.Integer(scaling, "original_max_position_embeddings", problems, required: false);
                foreach (var (name, value) in new (string, object?)[] { ("factor", factor), ("low_freq_factor", low), ("high_freq_factor", high), ("original_max_position_embeddings", original) })
                    if (value is null) problems.Add($"{key}.{name} is missing (rope_type llama3)");
                return (theta ?? defaultTheta, new RopeScaling("llama3", factor ?? 1, low ?? 1, high ?? 4, original ?? 8192));
            }
            default:
                problems.Add($"{key}.rope_type '{type}' is not supported (supported: default, {string.Join(", ", RopeScaling.Types)})");
                return (theta ?? defaultTheta, null);
        }
    }

    /// <summary>model_type from the first architectures entry (LlamaForCausalLM → llama, …).</summary>
    private static string InferModelType(JsonObject json)
    {
        var first = json["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : "";
        foreach (var (type, (causal, classifier)) in ArchitectureNames)
            if (first == causal || first == classifier || first == causal.Replace("ForCausalLM", "Model", StringComparison.Ordinal)) return type;
        return first;
    }

    /// <summary>Rotary inverse-frequency buffers older transformers saved (model.layers.{i}.self_attn.rotary_emb.inv_freq): not learned state.</summary>
    [GeneratedRegex(@"^(model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq$", RegexOptions.CultureInvariant)]
    private static partial Regex RotaryBuffer();

    /// <summary>Trunk names without the <c>model.</c> prefix (a bare LlamaModel's save).</summary>
    private static bool IsBareTrunkName(string name) =>
        name.StartsWith("embed_tokens.", StringComparison.Ordinal) || name.StartsWith("layers.", StringComparison.Ordinal) || name.StartsWith("norm.", StringComparison.Ordinal);

    /// <summary>The trunk's tensors under <c>model.</c>, every other name as it is.</summary>
    private static Dictionary<string, Tensor> WithTrunkPrefix(IReadOnlyDictionary<string, Tensor> source, List<string> problems)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in source)
        {
            if (RotaryBuffer().IsMatch(name)) continue;
            var local = IsBareTrunkName(name) ? "model." + name : name;
            if (!result.TryAdd(local, tensor)) problems.Add($"{local} appears both with and without the 'model.' prefix");
        }
        return result;
    }

    private sealed class LlamaFamily : ModelFamily
    {
        public override IReadOnlyList<string> ModelTypes => LlamaConfig.ModelTypes;

        public override IReadOnlyList<string> Architectures { get; } =
            ArchitectureNames.Values.SelectMany(a => new[] { a.CausalLm, a.Classifier, a.CausalLm.Replace("ForCausalLM", "Model", StringComparison.Ordinal) }).ToArray();

        public override DecoderConfig Parse(JsonObject json, List<string> problems) => LlamaConfigJson.Parse(json, problems);

        public override JsonObject ToJson(DecoderConfig config, ModelRole role, SpecialTokenIds tokens, JsonObject own, string torchDtype) =>
            LlamaConfigJson.ToJson((LlamaConfig)config, role, tokens, own, torchDtype);

        /// <summary>
        /// <c>model.*</c> and, untied, <c>lm_head.weight</c>. With tie_word_embeddings an lm_head.weight that
        /// some exporters keep must equal the embedding (it is then dropped); an untied head must be there.
        /// </summary>
        public override Dictionary<string, Tensor> PolicyTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems)
        {
            var tensors = WithTrunkPrefix(source, problems);
            const string Head = "lm_head.weight", Embedding = "model.embed_tokens.weight";
            if (((LlamaConfig)config).TieWordEmbeddings && tensors.Remove(Head, out var head))
            {
                if (!tensors.TryGetValue(Embedding, out var embedding)) tensors[Embedding] = head;
                else if (!head.shape.SequenceEqual(embedding.shape) || !head.eq(embedding).all().ToBoolean())
                    problems.Add($"{Head} differs from {Embedding} but tie_word_embeddings is true: set it false for an untied head");
            }
            return tensors;
        }

        /// <summary>*ForSequenceClassification: <c>model.*</c> and <c>score.*</c>; a causal LM's lm_head is not part of it.</summary>
        public override Dictionary<string, Tensor> RewardTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems) =>
            WithTrunkPrefix(source, problems);
    }
}
