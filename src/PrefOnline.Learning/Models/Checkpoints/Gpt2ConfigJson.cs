using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// <see cref="Gpt2Config"/> ↔ Hugging Face's GPT-2 config.json. Written with every key transformers'
/// GPT2Config reads, so <c>GPT2LMHeadModel.from_pretrained(dir)</c> builds the same network; read
/// leniently (absent keys take Hugging Face's defaults) but strictly about anything this
/// implementation does not compute (another activation, an untied head, cross-attention, …).
/// </summary>
internal static class Gpt2ConfigJson
{
    /// <summary>Hugging Face's default for every *_pdrop when config.json leaves it out.</summary>
    private const double HuggingFaceDefaultDropout = 0.1;

    /// <summary>The GPT-2 family for checkpoint I/O.</summary>
    public static ModelFamily Family { get; } = new Gpt2Family();

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
        json[ModelFamilyJson.OwnSection] = own ?? new JsonObject();
        return json;
    }

    public static Gpt2Config Parse(JsonObject json, List<string> problems)
    {
        var modelType = ModelFamilyJson.String(json, "model_type", problems);
        if (modelType is not null && modelType != "gpt2")
            problems.Add($"model_type is '{modelType}', only 'gpt2' is supported");

        var vocab = ModelFamilyJson.Integer(json, "vocab_size", problems, required: true);
        var positions = ModelFamilyJson.Integer(json, "n_positions", problems, required: false) ?? ModelFamilyJson.Integer(json, "n_ctx", problems, required: false);
        if (positions is null) problems.Add("config.json lacks n_positions");
        var width = ModelFamilyJson.Integer(json, "n_embd", problems, required: true);
        var layers = ModelFamilyJson.Integer(json, "n_layer", problems, required: true);
        var heads = ModelFamilyJson.Integer(json, "n_head", problems, required: true);
        var epsilon = ModelFamilyJson.Number(json, "layer_norm_epsilon", problems) ?? 1e-5;

        // One dropout rate drives our model; a checkpoint with three different rates gets the
        // largest, so fine-tuning is never less regularised than the config asked for.
        var dropouts = new[] { "resid_pdrop", "embd_pdrop", "attn_pdrop" }
            .Select(k => ModelFamilyJson.Number(json, k, problems) ?? HuggingFaceDefaultDropout).ToArray();

        var inner = json["n_inner"];
        if (inner is not null && width is { } w)
        {
            var n = ModelFamilyJson.Integer(json, "n_inner", problems, required: false);
            if (n is { } value && value != 4 * w) problems.Add($"n_inner {value} is not 4·n_embd ({4 * w}); only GPT-2's 4x MLP is supported");
        }
        var activation = ModelFamilyJson.String(json, "activation_function", problems);
        if (activation is not null && activation is not ("gelu_new" or "gelu_pytorch_tanh"))
            problems.Add($"activation_function '{activation}' is not supported (GPT-2's tanh GELU: gelu_new)");
        ModelFamilyJson.RequireFlag(json, "tie_word_embeddings", expected: true, "untied LM heads are not supported", problems);
        ModelFamilyJson.RequireFlag(json, "scale_attn_weights", expected: true, "unscaled attention is not supported", problems);
        ModelFamilyJson.RequireFlag(json, "scale_attn_by_inverse_layer_idx", expected: false, "per-layer attention scaling is not supported", problems);
        ModelFamilyJson.RequireFlag(json, "add_cross_attention", expected: false, "cross-attention is not supported", problems);

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

    private sealed class Gpt2Family : ModelFamily
    {
        public override IReadOnlyList<string> ModelTypes { get; } = ["gpt2"];

        public override IReadOnlyList<string> Architectures { get; } = ["GPT2LMHeadModel", "GPT2Model", "GPT2ForSequenceClassification"];

        public override DecoderConfig Parse(JsonObject json, List<string> problems) => Gpt2ConfigJson.Parse(json, problems);

        public override JsonObject ToJson(DecoderConfig config, ModelRole role, SpecialTokenIds tokens, JsonObject own, string torchDtype) =>
            Gpt2ConfigJson.ToJson((Gpt2Config)config, role == ModelRole.CausalLm ? "GPT2LMHeadModel" : "GPT2ForSequenceClassification",
                tokens.EndOfSequence, tokens.Padding, own, torchDtype);

        /// <summary>Our GPT-2 policy holds the trunk's names at its root: a <c>transformer.</c> prefix is
        /// stripped, the old attention buffers dropped, a tied lm_head.weight folded into wte.weight.</summary>
        public override Dictionary<string, Tensor> PolicyTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems)
        {
            var extra = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var trunk = WeightFiles.MapTrunk(source, "transformer.", prefixRequired: false, extra, problems);
            foreach (var (name, tensor) in extra) trunk[name] = tensor; // reported as unexpected by the name check
            return trunk;
        }

        /// <summary>GPT2ForSequenceClassification: <c>transformer.*</c> and <c>score.*</c>.</summary>
        public override Dictionary<string, Tensor> RewardTensors(IReadOnlyDictionary<string, Tensor> source, DecoderConfig config, List<string> problems)
        {
            var extra = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var trunk = WeightFiles.MapTrunk(source, "transformer.", prefixRequired: true, extra, problems);
            var all = trunk.ToDictionary(kv => "transformer." + kv.Key, kv => kv.Value, StringComparer.Ordinal);
            foreach (var (name, tensor) in extra) all[name] = tensor;
            return all;
        }
    }
}
