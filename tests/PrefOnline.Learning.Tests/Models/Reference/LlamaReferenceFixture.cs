using System.Text.Json.Nodes;
using static PrefOnline.Learning.Tests.Models.Reference.PythonReference;

namespace PrefOnline.Learning.Tests.Models.Reference;

/// <summary>
/// One run of llama_reference.py for the Llama cross-check class: random-weight Llama-family checkpoints
/// in the Hugging Face layout, one per feature — grouped-query attention with an untied head (gqa), Qwen2's
/// q/k/v biases with a tied head (qwen2), Qwen3's q/k RMSNorm with head_dim ≠ hidden/heads and
/// attention_bias (qwen3), Llama 3 rope_scaling with rope_theta 500000 and attention/MLP biases (llama3),
/// linear rope_scaling (linear),
/// Mistral (mistral), the gqa shape split into 3 shards (sharded), bfloat16 weights (bf16) and a reward model
/// (reward) — and PyTorch's logits, greedy continuations and rewards for them.
/// </summary>
public sealed class LlamaReferenceFixture : IDisposable
{
    /// <summary>The policies whose logits and greedy continuations are compared.</summary>
    public static readonly string[] Policies = ["gqa", "qwen2", "qwen3", "llama3", "linear", "mistral", "sharded", "bf16"];

    public static readonly int[][] LogitRows =
    [
        [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10, 0, 255, 128, 256, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85],
        [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5, 0, 2, 8, 8, 4, 1, 9, 7],
        [200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239],
    ];

    // Left padding: row 0 has 3 padding positions (token 257) before its 5 real tokens.
    public static readonly int[][] LeftPaddedRows = [[257, 257, 257, 10, 20, 30, 40, 50], [1, 2, 3, 4, 5, 6, 7, 8]];
    public static readonly int[][] LeftPaddedMask = [[0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]];
    public static readonly int[][] LeftPaddedPositions = [[0, 0, 0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7]];

    public static readonly int[][] GreedyPrompts = [[84, 104, 101, 32], [7], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]];
    public const int GreedySteps = 20;

    public static readonly int[][] RewardRows = [[1, 2, 3, 4, 5], [72, 101, 108, 108, 111, 256], [9, 8]];

    /// <summary>A small Llama-family config.json: 2 layers, width 64, 4 query heads, MLP 96, context 128,
    /// the byte vocabulary (258), rms_norm_eps 1e-5; <paramref name="extra"/> overrides or adds keys.</summary>
    public static JsonObject Config(string modelType, JsonObject extra)
    {
        var config = new JsonObject
        {
            ["model_type"] = modelType,
            ["vocab_size"] = 258,
            ["hidden_size"] = 64,
            ["intermediate_size"] = 96,
            ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4,
            ["max_position_embeddings"] = 128,
            ["rms_norm_eps"] = 1e-5,
            ["hidden_act"] = "silu",
        };
        foreach (var (key, value) in extra) config[key] = value?.DeepClone();
        return config;
    }

    private static readonly Dictionary<string, (JsonObject Config, string Dtype, int Shards, int Seed)> Made = new()
    {
        ["gqa"] = (Config("llama", new() { ["num_key_value_heads"] = 2, ["tie_word_embeddings"] = false }), "float32", 1, 1),
        ["qwen2"] = (Config("qwen2", new() { ["num_key_value_heads"] = 1, ["tie_word_embeddings"] = true, ["rope_theta"] = 1_000_000.0, ["use_sliding_window"] = false, ["sliding_window"] = 32 }), "float32", 1, 2),
        ["qwen3"] = (Config("qwen3", new() { ["num_key_value_heads"] = 2, ["head_dim"] = 24, ["attention_bias"] = true, ["tie_word_embeddings"] = false }), "float32", 1, 3),
        ["llama3"] = (Config("llama", new()
        {
            ["num_key_value_heads"] = 4, ["tie_word_embeddings"] = true, ["attention_bias"] = true, ["mlp_bias"] = true, ["rope_theta"] = 500_000.0,
            // original 64 with D = 16 and θ = 500000: wavelengths 2π·500000^(i/8) = 6.3, 32, 167, … span all three bands
            // (kept < 16, blended 16–64, divided > 64).
            ["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 64 },
        }), "float32", 1, 4),
        // Linear rope scaling under the older key "type" (transformers still reads it).
        ["linear"] = (Config("llama", new() { ["num_key_value_heads"] = 2, ["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 4.0 } }), "float32", 1, 9),
        ["mistral"] = (Config("mistral", new() { ["num_key_value_heads"] = 2, ["sliding_window"] = null, ["tie_word_embeddings"] = false }), "float32", 1, 5),
        ["sharded"] = (Config("llama", new() { ["num_key_value_heads"] = 2, ["tie_word_embeddings"] = false }), "float32", 3, 6),
        ["bf16"] = (Config("llama", new() { ["num_key_value_heads"] = 2, ["tie_word_embeddings"] = true, ["torch_dtype"] = "bfloat16" }), "bfloat16", 1, 7),
    };

    public LlamaReferenceFixture()
    {
        Directory = ModelTestSupport.TempDirectory("llama-reference");
        var models = new JsonArray();
        foreach (var (name, (config, dtype, shards, seed)) in Made)
        {
            var logits = new JsonArray(new JsonObject { ["tokens"] = Rows(LogitRows) });
            if (name == "gqa")
                logits.Add(new JsonObject { ["tokens"] = Rows(LeftPaddedRows), ["attention_mask"] = Rows(LeftPaddedMask), ["position_ids"] = Rows(LeftPaddedPositions) });
            models.Add(new JsonObject
            {
                ["name"] = name,
                ["make"] = new JsonObject { ["config"] = config.DeepClone(), ["seed"] = seed, ["std"] = 0.2, ["dtype"] = dtype, ["shards"] = shards },
                ["queries"] = new JsonObject
                {
                    ["logits"] = logits,
                    ["greedy"] = new JsonArray(GreedyPrompts.Select(p => (JsonNode)new JsonObject { ["prompt"] = Ints(p), ["steps"] = GreedySteps }).ToArray()),
                },
            });
        }
        models.Add(new JsonObject
        {
            ["name"] = "reward",
            ["kind"] = "reward",
            ["make"] = new JsonObject { ["config"] = Config("qwen3", new() { ["num_key_value_heads"] = 2 }), ["seed"] = 8, ["std"] = 0.3 },
            ["queries"] = new JsonObject { ["rewards"] = Rows(RewardRows) },
        });
        Expected = Run(new JsonObject { ["models"] = models }, Directory, LlamaScript);
    }

    public string Directory { get; }

    public JsonObject Expected { get; }

    public string PathOf(string name) => System.IO.Path.Combine(Directory, name);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }
}
