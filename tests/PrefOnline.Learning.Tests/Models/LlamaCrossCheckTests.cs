using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tests.Models.Reference;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;
using F = PrefOnline.Learning.Tests.Models.Reference.LlamaReferenceFixture;

namespace PrefOnline.Learning.Tests.Models;

/// <summary>
/// The C# Llama family against llama_reference.py (a plain-PyTorch Llama / Qwen2 / Qwen3 / Mistral written
/// apart from it) on the same random weights, in the Hugging Face layout: logits (max abs diff &lt; 1e-4 in
/// float32) and greedy continuations token for token — with the KV cache and without — for grouped-query
/// attention, q/k/v biases, q/k-norm, tied and untied heads and Llama 3 rope scaling; sharded and bfloat16
/// checkpoints; a reward model on a Llama trunk; and checkpoints written here read back by PyTorch.
/// </summary>
public sealed class LlamaCrossCheckTests(LlamaReferenceFixture reference) : IClassFixture<LlamaReferenceFixture>
{
    private const double LogitTolerance = 1e-4;

    public static IEnumerable<object[]> Policies() => F.Policies.Select(n => new object[] { n });

    private JsonObject Answers(string model) => reference.Expected[model]!.AsObject();

    [Theory]
    [MemberData(nameof(Policies))]
    public void Logits_match_pytorch(string name)
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf(name));
        Assert.IsType<LlamaForCausalLM>(model);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LogitRows));
        Assert.Equal([3L, 40, 258], logits.shape);
        var expected = PythonReference.Flatten(Answers(name)["logits"]![0]!);
        var diff = MaxAbsDiff(expected, logits.data<float>().ToArray());
        Assert.True(diff < LogitTolerance, $"{name}: max |Δlogit| = {diff}");
        Assert.True(expected.Max() - expected.Min() > 5, "reference logits are degenerate");
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Greedy_continuations_match_pytorch_with_and_without_the_kv_cache(string name)
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf(name));
        var expected = Answers(name)["greedy"]!.AsArray().Select(a => a!.AsArray().Select(n => n!.GetValue<int>()).ToArray()).ToArray();
        for (var i = 0; i < F.GreedyPrompts.Length; i++)
        {
            Assert.Equal(expected[i], Greedy(model, F.GreedyPrompts[i], F.GreedySteps));
            Assert.True(expected[i].Distinct().Count() > 1, "a constant continuation would prove little");
        }

        // All prompts at once through the TorchSharp decoder: left padding, one prefill, then one position per step.
        using var decoder = new TorchSharpDecoder(model);
        var rows = decoder.Generate(new DecodeRequest
        {
            Prompts = F.GreedyPrompts, Temperature = 0, MaxNewTokens = F.GreedySteps, RowSeeds = [1, 2, 3],
        });
        for (var i = 0; i < F.GreedyPrompts.Length; i++) Assert.Equal(expected[i], rows[i].Tokens);
    }

    [Fact]
    public void Logits_match_pytorch_with_left_padding_attention_mask_and_position_ids()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("gqa"));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LeftPaddedRows), Tokens(F.LeftPaddedMask), Tokens(F.LeftPaddedPositions));
        var expected = PythonReference.Flatten(Answers("gqa")["logits"]![1]!);
        var actual = logits.data<float>().ToArray();
        Assert.True(MaxAbsDiff(expected, actual) < LogitTolerance, $"max |Δlogit| = {MaxAbsDiff(expected, actual)}");
        // The padded row's real tokens see exactly what an unpadded run of them sees.
        var alone = model.Forward(Tokens([[10, 20, 30, 40, 50]])).data<float>().ToArray();
        var paddedRowReal = logits.select(0, 0).slice(0, 3, 8, 1).contiguous().data<float>().ToArray();
        Assert.True(MaxAbsDiff(alone, paddedRowReal) < 1e-4);
    }

    [Fact]
    public void Each_family_has_hugging_face_parameter_names_and_shapes()
    {
        using var gqa = PolicyCheckpoint.LoadModel(reference.PathOf("gqa"));
        var names = gqa.state_dict();
        Assert.Equal([32L, 64], names["model.layers.0.self_attn.k_proj.weight"].shape);   // 2 key/value heads × 16
        Assert.Equal([64L, 64], names["model.layers.0.self_attn.q_proj.weight"].shape);
        Assert.Equal([258L, 64], names["lm_head.weight"].shape);                          // untied
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.bias", names.Keys);

        using var qwen2 = PolicyCheckpoint.LoadModel(reference.PathOf("qwen2"));
        var qwen2Names = qwen2.state_dict().Keys;
        Assert.Contains("model.layers.1.self_attn.v_proj.bias", qwen2Names);
        Assert.DoesNotContain("model.layers.1.self_attn.o_proj.bias", qwen2Names);
        Assert.DoesNotContain("lm_head.weight", qwen2Names);                               // tied

        using var qwen3 = PolicyCheckpoint.LoadModel(reference.PathOf("qwen3"));
        var qwen3Names = qwen3.state_dict();
        Assert.Equal([24L], qwen3Names["model.layers.0.self_attn.q_norm.weight"].shape);  // head_dim 24 ≠ 64 / 4
        Assert.Equal([96L, 64], qwen3Names["model.layers.0.self_attn.q_proj.weight"].shape);
        Assert.Contains("model.layers.0.self_attn.o_proj.bias", qwen3Names.Keys);
        Assert.Equal(2, ((LlamaConfig)qwen3.Config).KeyValueHeads);
        Assert.Equal("qwen3", qwen3.Config.ModelType);
    }

    [Fact]
    public void A_bfloat16_checkpoint_loads_exactly_onto_a_bfloat16_placement()
    {
        var placement = new TensorPlacement("cpu", "bfloat16");
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("bf16"), placement);
        Assert.Equal(placement, model.Placement);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var wide = PolicyCheckpoint.LoadModel(reference.PathOf("bf16"));
        foreach (var (name, value) in model.state_dict())
            Assert.True(Same(value.to(ScalarType.Float32), wide.state_dict()[name]), $"{name} changed on the way to bfloat16");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LogitRows)).to(ScalarType.Float32).data<float>().ToArray();
        var expected = PythonReference.Flatten(Answers("bf16")["logits"]![0]!);
        // bfloat16 arithmetic keeps ~3 significant digits: close, not equal.
        var range = expected.Max() - expected.Min();
        Assert.True(MaxAbsDiff(expected, logits) < 0.05 * range, $"max |Δlogit| = {MaxAbsDiff(expected, logits)} (range {range})");
    }

    [Fact]
    public void A_sharded_checkpoint_reads_its_index()
    {
        var dir = reference.PathOf("sharded");
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.Equal(3, Directory.GetFiles(dir, "model-*-of-00003.safetensors").Length);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        // Its logits are checked by Logits_match_pytorch("sharded"); a missing shard is named.
        var broken = TempDirectory("broken-shards");
        try
        {
            foreach (var file in Directory.GetFiles(dir)) File.Copy(file, Path.Combine(broken, Path.GetFileName(file)));
            File.Delete(Path.Combine(broken, "model-00002-of-00003.safetensors"));
            var error = Assert.Throws<InvalidCheckpointException>(() => PolicyCheckpoint.LoadModel(broken));
            Assert.Contains("model-00002-of-00003.safetensors", error.Message);
        }
        finally
        {
            Directory.Delete(broken, recursive: true);
        }
    }

    [Fact]
    public void Reward_model_on_a_llama_trunk_matches_pytorch()
    {
        using var model = RewardCheckpoint.Load(reference.PathOf("reward.safetensors"));
        Assert.IsType<LlamaModel>(model.Trunk);
        Assert.All(model.state_dict().Keys, k => Assert.True(k.StartsWith("model.", StringComparison.Ordinal) || k.StartsWith("score.", StringComparison.Ordinal), k));
        var rows = F.RewardRows.Select(r => (new[] { r[0] }, r[1..])).ToList();
        using var batch = SequenceBatch.FromTokens(rows, model.Config.ContextLength, 257);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rewards = model.Forward(batch).data<float>().ToArray();
        var expected = Answers("reward")["rewards"]!.AsArray().Select(n => n!.GetValue<float>()).ToArray();
        Assert.True(MaxAbsDiff(expected, rewards) < 1e-4, $"rewards {string.Join(", ", rewards)} vs {string.Join(", ", expected)}");
        Assert.True(expected.Max() - expected.Min() > 1e-2, "reference rewards are degenerate");
    }

    [Fact]
    public void Llama_checkpoints_saved_here_are_read_by_pytorch_with_the_same_logits_and_rewards()
    {
        var dir = TempDirectory("llama-saved-for-torch");
        try
        {
            var configs = new Dictionary<string, LlamaConfig>
            {
                ["qwen3"] = new() { Family = "qwen3", VocabularySize = 258, Width = 48, IntermediateSize = 80, Layers = 2, Heads = 4, KeyValueHeadCount = 2, HeadDimension = 16, ContextLength = 64, TieWordEmbeddings = false, AttentionBias = true },
                ["llama3"] = new()
                {
                    VocabularySize = 258, Width = 32, IntermediateSize = 64, Layers = 2, Heads = 2, KeyValueHeadCount = 1, ContextLength = 64, RopeTheta = 500_000,
                    RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64), MlpBias = true,
                },
                ["qwen2"] = new() { Family = "qwen2", VocabularySize = 258, Width = 32, IntermediateSize = 64, Layers = 1, Heads = 4, KeyValueHeadCount = 4, ContextLength = 64 },
            };
            var models = new Dictionary<string, PolicyModel>();
            var rows = F.LogitRows.Select(r => r[..20]).ToArray();
            var spec = new JsonArray();
            try
            {
                foreach (var (name, config) in configs)
                {
                    var model = models[name] = PolicyModel.Create(config, seed: 11);
                    Perturb(model, seed: 12);
                    PolicyCheckpoint.Save(Path.Combine(dir, name), model, ByteTokenizer.Instance);
                    spec.Add(new JsonObject { ["name"] = name, ["load"] = Path.Combine(dir, name), ["queries"] = new JsonObject { ["logits"] = new JsonArray(new JsonObject { ["tokens"] = PythonReference.Rows(rows) }) } });
                }
                using var reward = RewardModel.FromPolicy(models["qwen3"], seed: 13);
                RewardCheckpoint.Save(Path.Combine(dir, "reward.safetensors"), reward);
                spec.Add(new JsonObject { ["name"] = "reward", ["kind"] = "reward", ["load"] = Path.Combine(dir, "reward.safetensors"), ["queries"] = new JsonObject { ["rewards"] = PythonReference.Rows(F.RewardRows) } });
                var answers = PythonReference.Run(new JsonObject { ["models"] = spec }, Path.Combine(dir, "torch"), PythonReference.LlamaScript);

                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                foreach (var (name, model) in models)
                {
                    var logits = model.Forward(Tokens(rows)).data<float>().ToArray();
                    var diff = MaxAbsDiff(PythonReference.Flatten(answers[name]!["logits"]![0]!), logits);
                    Assert.True(diff < 1e-4, $"{name}: max |Δlogit| = {diff}");
                }
                using var batch = SequenceBatch.FromTokens(F.RewardRows.Select(r => (new[] { r[0] }, r[1..])).ToList(), 64, 257);
                var rewards = reward.Forward(batch).data<float>().ToArray();
                Assert.True(MaxAbsDiff(PythonReference.Flatten(answers["reward"]!["rewards"]!), rewards) < 1e-4);

                // And back: the directory this worker wrote loads here with the same config.
                using var again = PolicyCheckpoint.LoadModel(Path.Combine(dir, "llama3"));
                Assert.Equal(configs["llama3"], again.Config);
            }
            finally
            {
                foreach (var model in models.Values) model.Dispose();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Kv_cache_decoding_gives_the_log_probs_of_a_full_forward_over_the_same_tokens()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("qwen3"));
        using var decoder = new TorchSharpDecoder(model);
        var prompts = new[] { new[] { 5, 6, 7 }, new[] { 100, 101, 102, 103, 104, 105, 106, 107 }, new[] { 42 } };
        var rows = decoder.Generate(new DecodeRequest { Prompts = prompts, SamplesPerPrompt = 2, Temperature = 1, MaxNewTokens = 12, RowSeeds = [1, 2, 3, 4, 5, 6] });
        Assert.Equal(6, rows.Count);
        using var noGrad = no_grad();
        foreach (var row in rows)
        {
            using var scope = NewDisposeScope();
            var prompt = prompts[row.PromptIndex];
            var logits = model.Forward(Tokens([[.. prompt, .. row.Tokens]]));                 // (1, P + N, V)
            var logProbs = logits.log_softmax(-1)[0];
            for (var j = 0; j < row.Tokens.Length; j++)
            {
                var full = logProbs[prompt.Length - 1 + j, row.Tokens[j]].ToSingle();
                Assert.True(Math.Abs(full - row.PolicyLogProbs[j]) < 1e-4, $"prompt {row.PromptIndex} sample {row.SampleIndex} token {j}: cached {row.PolicyLogProbs[j]} vs full {full}");
            }
        }
        Assert.True(rows.Select(r => string.Join(",", r.Tokens)).Distinct().Count() > 3, "samples should differ");
    }

    [Fact]
    public void The_fused_decoder_refuses_a_llama_model_and_auto_picks_torchsharp()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("gqa"));
        var error = Assert.Throws<NotSupportedException>(() => PolicyDecoderFactory.FusedOnly.Create(model));
        Assert.Contains("GPT-2 only (the model is llama)", error.Message);
        Assert.DoesNotContain("\n", error.Message);
        using var decoder = PolicyDecoderFactory.Default.Create(model);
        Assert.Equal(TorchSharpDecoder.BackendName, decoder.Backend);
    }

    /// <summary>Random weights everywhere (norm weights around 1, biases nonzero), so nothing the init
    /// leaves at 0 or 1 can hide a wrongly used tensor.</summary>
    internal static void Perturb(PolicyModel model, ulong seed)
    {
        using var generator = new Generator(seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            var noise = randn(parameter.shape, generator: generator);
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) parameter.copy_(noise.mul(0.1).add(1));
            else parameter.copy_(noise.mul(0.2));
        }
    }
}
