using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

/// <summary>
/// config.json of the Llama family: model_type / architectures choose the family; every key that would
/// change the math this implementation does not compute is refused at load, naming the key, on one line;
/// transformers' defaults fill absent keys; the family round-trips through a checkpoint directory; the
/// RoPE frequencies follow Hugging Face's llama3 scaling band by band.
/// </summary>
public sealed class LlamaConfigTests
{
    private static LlamaConfig Small() => new() { VocabularySize = 258, Width = 32, IntermediateSize = 48, Layers = 1, Heads = 4, KeyValueHeadCount = 2, ContextLength = 64 };

    /// <summary>A saved tiny Llama checkpoint whose config.json then gets <paramref name="edit"/>; returns the load error.</summary>
    private static string LoadError(Action<JsonObject> edit)
    {
        var dir = TempDirectory("llama-config");
        try
        {
            using (var model = PolicyModel.Create(Small(), seed: 1)) PolicyCheckpoint.Save(dir, model, ByteTokenizer.Instance);
            var path = Path.Combine(dir, "config.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(json);
            File.WriteAllText(path, json.ToJsonString());
            var error = Assert.Throws<InvalidCheckpointException>(() => PolicyCheckpoint.LoadModel(dir));
            Assert.DoesNotContain("\n", error.Message);
            return error.Message;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("model_type", "\"falcon\"", "model_type 'falcon' is not supported (supported: gpt2, llama, qwen2, qwen3, mistral)")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act 'gelu' is not supported")]
    [InlineData("rope_scaling", """{"rope_type": "yarn", "factor": 4.0}""", "rope_scaling.rope_type 'yarn' is not supported")]
    [InlineData("rope_scaling", """{"type": "dynamic", "factor": 2.0}""", "rope_scaling.rope_type 'dynamic' is not supported")]
    [InlineData("rope_scaling", """{"rope_type": "llama3", "factor": 8.0}""", "rope_scaling.low_freq_factor is missing")]
    [InlineData("attention_dropout", "0.1", "attention_dropout 0.1 is not supported")]
    [InlineData("partial_rotary_factor", "0.5", "partial_rotary_factor 0.5 is not supported")]
    [InlineData("quantization_config", """{"quant_method": "gptq"}""", "quantization_config is present")]
    [InlineData("num_key_value_heads", "3", "num_key_value_heads 3 must be at least 1 and divide num_attention_heads 4")]
    [InlineData("vocab_size", "\"many\"", "vocab_size must be an integer")]
    public void Llama_config_keys_that_change_the_math_are_refused_by_name(string key, string value, string expected)
    {
        Assert.Contains(expected, LoadError(json => json[key] = JsonNode.Parse(value)));
    }

    [Fact]
    public void Family_specific_refusals_name_their_key()
    {
        Assert.Contains("use_sliding_window is true", LoadError(json =>
        {
            json["model_type"] = "qwen2";
            json["use_sliding_window"] = true;
        }));
        Assert.Contains("sliding_window 16 is shorter than max_position_embeddings 64", LoadError(json =>
        {
            json["model_type"] = "mistral";
            json["attention_bias"] = false;
            json["mlp_bias"] = false;
            json["sliding_window"] = 16;
        }));
        Assert.Contains("attention_bias is true: mistral's attention has no biases", LoadError(json =>
        {
            json["model_type"] = "mistral";
            json["mlp_bias"] = false;
            json["attention_bias"] = true;
            json["sliding_window"] = null;
        }));
        Assert.Contains("mlp_bias is true: qwen3's MLP has no biases", LoadError(json =>
        {
            json["model_type"] = "qwen3";
            json["mlp_bias"] = true;
        }));
        Assert.Contains("architectures 'FalconForCausalLM' is not supported and config.json has no model_type", LoadError(json =>
        {
            json.Remove("model_type");
            json["architectures"] = new JsonArray("FalconForCausalLM");
        }));
    }

    [Fact]
    public void Architectures_choose_the_family_when_model_type_is_absent_and_defaults_are_transformers()
    {
        var problems = new List<string>();
        var config = (LlamaConfig)ModelFamily.ParseConfig(new JsonObject
        {
            ["architectures"] = new JsonArray("Qwen2ForCausalLM"),
            ["vocab_size"] = 100, ["hidden_size"] = 32, ["intermediate_size"] = 64, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4,
        }.ToJsonString(), problems)!;
        Assert.True(problems.Count == 0, string.Join("; ", problems));
        Assert.Equal("qwen2", config.ModelType);
        Assert.True(config.QkvBias);
        Assert.False(config.OutputBias);
        Assert.Equal(4, config.KeyValueHeads);          // num_key_value_heads defaults to num_attention_heads
        Assert.Equal(8, config.HeadDim);                // hidden_size / num_attention_heads
        Assert.Equal(32_768, config.ContextLength);
        Assert.Equal(1e-6, config.RmsNormEpsilon);
        Assert.Equal(10_000, config.RopeTheta);
        Assert.False(config.TieWordEmbeddings);

        var mistral = (LlamaConfig)ModelFamily.ParseConfig(new JsonObject
        {
            ["model_type"] = "mistral", ["sliding_window"] = 4096, ["max_position_embeddings"] = 4096,
            ["vocab_size"] = 100, ["hidden_size"] = 32, ["intermediate_size"] = 64, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4,
        }.ToJsonString(), problems)!;
        Assert.True(problems.Count == 0, string.Join("; ", problems)); // a window as long as the context never hides a key
        Assert.False(mistral.QkvBias || mistral.QkNorm);
    }

    [Fact]
    public void Llama3_rope_scaling_keeps_short_wavelengths_divides_long_ones_and_blends_between()
    {
        var plain = Small() with { HeadDimension = 16, RopeTheta = 500_000 };
        var scaled = plain with { RopeScaling = new RopeScaling("llama3", Factor: 8, LowFrequencyFactor: 1, HighFrequencyFactor: 4, OriginalContextLength: 64) };
        var (before, after) = (plain.InverseFrequencies(), scaled.InverseFrequencies());
        Assert.Equal(8, before.Length);
        var bands = new HashSet<string>();
        for (var i = 0; i < before.Length; i++)
        {
            var wavelength = 2 * Math.PI / before[i];
            if (wavelength < 64 / 4.0)
            {
                Assert.Equal(before[i], after[i]);
                bands.Add("kept");
            }
            else if (wavelength > 64 / 1.0)
            {
                Assert.Equal(before[i] / 8, after[i], 1e-6 * before[i]);
                bands.Add("divided");
            }
            else
            {
                var smooth = (64 / wavelength - 1) / (4 - 1);
                Assert.Equal((1 - smooth) * before[i] / 8 + smooth * before[i], after[i], 1e-6 * before[i]);
                bands.Add("blended");
            }
        }
        Assert.Equal(3, bands.Count);
    }

    [Fact]
    public void A_seeded_llama_policy_is_reproducible_and_round_trips_through_a_checkpoint()
    {
        var dir = TempDirectory("llama-round-trip");
        try
        {
            using var a = PolicyModel.Create(Small(), seed: 5);
            using var b = PolicyModel.Create(Small(), seed: 5);
            foreach (var (name, value) in a.state_dict()) Assert.True(Same(value, b.state_dict()[name]), name);
            PolicyCheckpoint.Save(dir, a, ByteTokenizer.Instance);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
            Assert.Equal("llama", json["model_type"]!.GetValue<string>());
            Assert.Equal("LlamaForCausalLM", json["architectures"]![0]!.GetValue<string>());
            Assert.Equal(2, json["num_key_value_heads"]!.GetValue<int>());
            using var loaded = PolicyCheckpoint.Load(dir);
            Assert.Equal(a.Config, loaded.Config);
            foreach (var (name, value) in a.state_dict()) Assert.True(Same(value, loaded.Model.state_dict()[name]), name);
            using var copy = a.Copy();
            Assert.IsType<LlamaForCausalLM>(copy);
            foreach (var (name, value) in a.state_dict()) Assert.True(Same(value, copy.state_dict()[name]), name);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Qwen3_head_dim_defaults_to_128_as_in_transformers()
    {
        var problems = new List<string>();
        var config = ModelFamily.ParseConfig(new JsonObject
        {
            ["model_type"] = "qwen3", ["vocab_size"] = 100, ["hidden_size"] = 32, ["intermediate_size"] = 64, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4,
        }.ToJsonString(), problems)!;
        Assert.True(problems.Count == 0, string.Join("; ", problems));
        Assert.Equal(128, config.HeadDim);
    }

    [Fact]
    public void Both_families_move_to_bfloat16_and_back()
    {
        var bfloat16 = new PrefOnline.Tensors.TensorPlacement("cpu", "bfloat16");
        foreach (DecoderConfig config in new DecoderConfig[] { Micro(), Small() })
        {
            using var model = PolicyModel.Create(config, seed: 2);
            var before = model.state_dict().ToDictionary(p => p.Key, p => p.Value.to(ScalarType.BFloat16));
            model.Place(bfloat16);
            Assert.Equal(bfloat16, model.Placement);
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
            foreach (var (name, value) in model.state_dict()) Assert.True(Same(value, before[name]), name);
            using var copy = model.Copy();
            Assert.Equal(bfloat16, copy.Placement);
            model.Place(PrefOnline.Tensors.TensorPlacement.Cpu);
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        }
    }

    [Fact]
    public void A_reward_model_starts_from_a_llama_policy_and_round_trips()
    {
        var dir = TempDirectory("llama-reward");
        try
        {
            using var policy = PolicyModel.Create(Small() with { Family = "qwen3" }, seed: 6);
            using var reward = RewardModel.FromPolicy(policy, seed: 7);
            Assert.True(Same(reward.state_dict()["model.layers.0.self_attn.q_norm.weight"], policy.state_dict()["model.layers.0.self_attn.q_norm.weight"]));
            Assert.Equal(["model", "score"], reward.named_children().Select(c => c.name).ToArray());
            var path = Path.Combine(dir, "reward.safetensors");
            RewardCheckpoint.Save(path, reward);
            using var loaded = RewardCheckpoint.Load(path);
            Assert.Equal(reward.Config, loaded.Config);
            foreach (var (name, value) in reward.state_dict()) Assert.True(Same(value, loaded.state_dict()[name]), name);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
