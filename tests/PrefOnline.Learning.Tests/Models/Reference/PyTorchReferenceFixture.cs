using System.Text.Json.Nodes;
using static PrefOnline.Learning.Tests.Models.Reference.PythonReference;

namespace PrefOnline.Learning.Tests.Models.Reference;

/// <summary>
/// One run of gpt2_reference.py for the whole cross-check class: it writes random-weight GPT-2
/// checkpoints in the Hugging Face layout (float32 at the tiny preset's shape; float16 with the
/// <c>transformer.</c> prefix, the old attention buffers and a tied lm_head; bfloat16; a reward
/// model with and without score.bias) and records PyTorch's answers about them.
/// </summary>
public sealed class PyTorchReferenceFixture : IDisposable
{
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

    public static readonly (int[] Prompt, int[] Completion)[] LogProbPairs =
    [
        ([72, 105], [32, 116, 104, 101, 114, 101, 256]),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [13]),
        ([99], [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112]),
        ([50, 60, 70, 80, 90], [256]),
    ];

    public static readonly int[][] GreedyPrompts = [[84, 104, 101, 32], [7]];
    public const int GreedySteps = 24;

    public static readonly string[] GradParameters = ["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"];

    public static readonly int[][] RewardRows = [[1, 2, 3, 4, 5], [72, 101, 108, 108, 111, 256], [9]];

    public PyTorchReferenceFixture()
    {
        Directory = ModelTestSupport.TempDirectory("torch-reference");
        var tinyConfig = HfConfig(258, 256, 128, 4, 4);
        var microConfig = HfConfig(258, 64, 32, 2, 4);
        var logProbQueries = new JsonArray(LogProbPairs.Select(p => (JsonNode)new JsonObject { ["prompt"] = Ints(p.Prompt), ["completion"] = Ints(p.Completion) }).ToArray());
        var spec = new JsonObject
        {
            ["models"] = new JsonArray(
                new JsonObject
                {
                    ["name"] = "tiny",
                    ["make"] = new JsonObject { ["config"] = tinyConfig, ["seed"] = 1, ["std"] = 0.2 },
                    ["queries"] = new JsonObject
                    {
                        ["logits"] = new JsonArray(
                            new JsonObject { ["tokens"] = Rows(LogitRows) },
                            new JsonObject { ["tokens"] = Rows(LeftPaddedRows), ["attention_mask"] = Rows(LeftPaddedMask), ["position_ids"] = Rows(LeftPaddedPositions) }),
                        ["logprobs"] = logProbQueries,
                        ["greedy"] = new JsonArray(GreedyPrompts.Select(p => (JsonNode)new JsonObject { ["prompt"] = Ints(p), ["steps"] = GreedySteps }).ToArray()),
                    },
                },
                HalfModel("float16", "fp16", microConfig, prefix: "transformer.", extras: true),
                HalfModel("bfloat16", "bf16", microConfig, prefix: "", extras: false),
                new JsonObject
                {
                    ["name"] = "grad",
                    ["make"] = new JsonObject { ["config"] = microConfig.DeepClone(), ["seed"] = 4, ["std"] = 0.3 },
                    ["queries"] = new JsonObject
                    {
                        ["grad"] = new JsonObject { ["pairs"] = logProbQueries.DeepClone(), ["params"] = new JsonArray(GradParameters.Select(n => (JsonNode)n).ToArray()) },
                    },
                },
                RewardSpec("reward", microConfig, dropBias: false),
                RewardSpec("reward_hf", microConfig, dropBias: true)),
        };
        Expected = Run(spec, Directory);
    }

    private static JsonObject HalfModel(string dtype, string name, JsonObject config, string prefix, bool extras) => new()
    {
        ["name"] = name,
        ["make"] = new JsonObject
        {
            ["config"] = config.DeepClone(), ["seed"] = 2, ["std"] = 0.3, ["dtype"] = dtype, ["prefix"] = prefix, ["buffers"] = extras, ["lm_head"] = extras,
        },
        ["queries"] = new JsonObject { ["logits"] = new JsonArray(new JsonObject { ["tokens"] = Rows(LogitRows.Select(r => r[..32]).ToArray()) }) },
    };

    private static JsonObject RewardSpec(string name, JsonObject config, bool dropBias) => new()
    {
        ["name"] = name,
        ["kind"] = "reward",
        ["make"] = new JsonObject { ["config"] = config.DeepClone(), ["seed"] = 5, ["std"] = 0.3, ["prefix"] = "transformer.", ["drop_score_bias"] = dropBias, ["buffers"] = dropBias },
        ["queries"] = new JsonObject { ["rewards"] = Rows(RewardRows) },
    };

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
