using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Optimization;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Tests.Support;
using PrefOnline.Tensors.Serialization;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

/// <summary>
/// LoRA adapters on both families: the adapted forward equals the forward of the merged weights
/// W + (α/r)·B·A, a training step moves only adapter parameters, adapters off gives the base model's
/// log-probs bit for bit, and the PEFT layout round-trips bit for bit with PEFT's key names and shapes.
/// </summary>
public sealed class LoraAdapterTests
{
    private static readonly LoraOptions Options = new() { Rank = 4, Alpha = 8 };

    /// <summary>A small Llama with grouped-query attention and an untied head (the head is never adapted).</summary>
    private static LlamaConfig MicroLlama() => new()
    {
        VocabularySize = 258, Width = 32, IntermediateSize = 48, Layers = 2, Heads = 4, KeyValueHeadCount = 2, ContextLength = 64,
        TieWordEmbeddings = false,
    };

    private static DecoderConfig ConfigOf(string family) => family == "gpt2" ? Micro() : MicroLlama();

    private static readonly int[][] Rows = [[5, 17, 200, 33, 9, 41, 77, 3], [250, 1, 64, 64, 12, 99, 180, 7]];

    /// <summary>B set to random values so the adapters change what the model computes.</summary>
    private static void RandomizeB(LoraAdapters adapters, long seed)
    {
        using var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (_, _, b) in adapters.Pairs()) b.normal_(0, 0.05, generator);
    }

    /// <summary>Same shape and the same float32 values, bit for bit.</summary>
    private static bool Bitwise(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && MemoryMarshal.Cast<float, int>(Values(a)).SequenceEqual(MemoryMarshal.Cast<float, int>(Values(b)));

    private static float[] Values(Tensor t) => t.detach().contiguous().data<float>().ToArray();

    private static float[] LogitsOf(PolicyModel model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return model.Forward(Tokens(Rows)).data<float>().ToArray();
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Adapted_forward_equals_the_forward_of_the_merged_weights(string family)
    {
        using var policy = PolicyModel.Create(ConfigOf(family), seed: 11);
        policy.eval();
        var baseLogits = LogitsOf(policy);
        var adapters = LoraAdapters.Attach(policy, Options, seed: 12);
        Assert.Equal(baseLogits, LogitsOf(policy)); // B = 0: the adapted model starts equal to the base
        RandomizeB(adapters, 13);
        var adapted = LogitsOf(policy);
        Assert.True(MaxAbsDiff(baseLogits, adapted) > 1e-3, "the adapters must change the logits for the comparison to mean anything");

        using var merged = policy.Copy();
        merged.eval();
        adapters.MergeInto(merged);
        var diff = MaxAbsDiff(adapted, LogitsOf(merged));
        Assert.True(diff < 1e-5, $"max |Δlogit| adapted vs merged = {diff}");

        // Merging in place gives a plain model computing the same, with its parameters trainable again.
        adapters.MergeAndDetach();
        Assert.Null(policy.Adapters);
        Assert.All(policy.parameters(), p => Assert.True(p.requires_grad));
        Assert.True(MaxAbsDiff(adapted, LogitsOf(policy)) < 1e-5);
    }

    [Theory]
    [InlineData("gpt2", new[] { "c_attn", "c_proj", "c_fc" }, 8)]
    [InlineData("llama", new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" }, 14)]
    public void Default_targets_are_every_attention_and_mlp_projection(string family, string[] targets, int sites)
    {
        using var policy = PolicyModel.Create(ConfigOf(family), seed: 1);
        var adapters = LoraAdapters.Attach(policy, Options, seed: 2);
        Assert.Equal(targets, adapters.Options.TargetModules);
        Assert.Equal(sites, adapters.Paths.Count);
        Assert.DoesNotContain(adapters.Paths, p => p.Contains("lm_head", StringComparison.Ordinal));
        Assert.Equal(family == "gpt2", adapters.FanInFanOut);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void With_adapters_off_log_probs_are_bitwise_the_base_models(string family)
    {
        using var plain = PolicyModel.Create(ConfigOf(family), seed: 21);
        using var policy = PolicyModel.Create(ConfigOf(family), seed: 21);
        plain.eval();
        policy.eval();
        var adapters = LoraAdapters.Attach(policy, Options with { Dropout = 0.1 }, seed: 22);
        RandomizeB(adapters, 23);
        using var batch = SequenceBatch.FromText(ByteTokenizer.Instance, [("the cat", " sat down"), ("a", " longer completion here")], 64);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var expected = SequenceLogProbs.Compute(plain, batch, LogProbReduction.Sum).TokenLogProbs.data<float>().ToArray();
        float[] off;
        using (policy.WithoutAdapters())
        {
            Assert.False(adapters.Enabled);
            off = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).TokenLogProbs.data<float>().ToArray();
        }
        Assert.True(adapters.Enabled);
        var on = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).TokenLogProbs.data<float>().ToArray();
        Assert.Equal(expected, off);                    // bitwise: float equality, element by element
        Assert.NotEqual(expected, on);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void An_optimizer_step_changes_only_adapter_parameters(string family)
    {
        using var policy = PolicyModel.Create(ConfigOf(family), seed: 31);
        policy.train();
        var adapters = LoraAdapters.Attach(policy, Options with { Dropout = 0.1 }, seed: 32);
        RandomizeB(adapters, 33);
        using var scope = NewDisposeScope();
        var baseBefore = policy.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var trainable = adapters.TrainableParameters();
        Assert.Equal(2 * adapters.Paths.Count, trainable.Count);
        Assert.All(policy.parameters(), p => Assert.False(p.requires_grad));
        var adapterBefore = trainable.Select(p => p.detach().clone()).ToList();

        using var optimizer = new AdamWOptimizer(trainable, new AdamWOptions { LearningRate = 1e-2 });
        var logits = policy.Forward(Tokens(Rows));                                    // (B, T, V)
        var loss = -logits.log_softmax(-1).select(-1, 42).mean();
        loss.backward();
        optimizer.Step();

        foreach (var (name, value) in policy.state_dict())
            Assert.True(Bitwise(value, baseBefore[name]), $"base weight {name} changed");
        Assert.All(policy.parameters(), p => Assert.True(p.grad is null, "a frozen base weight received a gradient"));
        for (var i = 0; i < trainable.Count; i++)
            Assert.False(Bitwise(trainable[i], adapterBefore[i]), $"adapter parameter {i} did not move");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Peft_save_then_load_round_trips_bitwise(string family)
    {
        var directory = TempDirectory("lora-roundtrip");
        try
        {
            using var policy = PolicyModel.Create(ConfigOf(family), seed: 41);
            policy.eval();
            var adapters = LoraAdapters.Attach(policy, Options with { Dropout = 0.05 }, seed: 42);
            RandomizeB(adapters, 43);
            PeftAdapter.Save(directory, adapters, "base/dir");

            using var again = PolicyModel.Create(ConfigOf(family), seed: 41);
            again.eval();
            var loaded = PeftAdapter.Load(directory, again);
            Assert.Same(loaded, again.Adapters);
            Assert.Equal(adapters.Options.Rank, loaded.Options.Rank);
            Assert.Equal(adapters.Options.Alpha, loaded.Options.Alpha);
            Assert.Equal(adapters.Options.Dropout, loaded.Options.Dropout);
            Assert.Equal(adapters.Options.TargetModules, loaded.Options.TargetModules);
            var saved = adapters.Pairs();
            var read = loaded.Pairs();
            Assert.Equal(saved.Select(p => p.Path), read.Select(p => p.Path));
            for (var i = 0; i < saved.Count; i++)
            {
                Assert.True(Bitwise(saved[i].A, read[i].A), $"{saved[i].Path} A differs");
                Assert.True(Bitwise(saved[i].B, read[i].B), $"{saved[i].Path} B differs");
            }
            Assert.Equal(LogitsOf(policy), LogitsOf(again));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("gpt2", "base_model.model.transformer.h.0.attn.c_attn", 32, 96)]
    [InlineData("gpt2", "base_model.model.transformer.h.1.mlp.c_proj", 128, 32)]
    [InlineData("llama", "base_model.model.model.layers.0.self_attn.k_proj", 32, 16)]
    [InlineData("llama", "base_model.model.model.layers.1.mlp.down_proj", 48, 32)]
    public void Saved_keys_shapes_and_config_are_as_peft_writes_them(string family, string module, long inFeatures, long outFeatures)
    {
        var directory = TempDirectory("lora-layout");
        try
        {
            using var policy = PolicyModel.Create(ConfigOf(family), seed: 51);
            var adapters = LoraAdapters.Attach(policy, Options, seed: 52);
            PeftAdapter.Save(directory, adapters, "my/base");
            Assert.Equal([PeftAdapter.ConfigFile, PeftAdapter.WeightsFile], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));

            var header = SafeTensorsFile.ReadHeader(Path.Combine(directory, PeftAdapter.WeightsFile));
            Assert.Equal("pt", header.Metadata["format"]);
            Assert.Equal(2 * adapters.Paths.Count, header.Entries.Count);
            Assert.All(header.Entries, e => Assert.Matches(@"^base_model\.model\.(transformer\.h|model\.layers)\.\d+\.[a-z_]+\.[a-z_]+\.lora_[AB]\.weight$", e.Name));
            var a = header.Entries.Single(e => e.Name == module + ".lora_A.weight");
            var b = header.Entries.Single(e => e.Name == module + ".lora_B.weight");
            Assert.Equal([4L, inFeatures], a.Shape);
            Assert.Equal([outFeatures, 4L], b.Shape);
            Assert.Equal(ScalarType.Float32, a.Dtype);

            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, PeftAdapter.ConfigFile)))!.AsObject();
            Assert.Equal("LORA", (string?)config["peft_type"]);
            Assert.Equal("CAUSAL_LM", (string?)config["task_type"]);
            Assert.Equal(4, (int)config["r"]!);
            Assert.Equal(8, (int)config["lora_alpha"]!);        // an integer, as PEFT's LoraConfig declares it
            Assert.Equal(0.0, (double)config["lora_dropout"]!);
            Assert.Equal("none", (string?)config["bias"]);
            Assert.Equal(family == "gpt2", (bool)config["fan_in_fan_out"]!);
            Assert.Equal("my/base", (string?)config["base_model_name_or_path"]);
            Assert.Equal(adapters.Options.TargetModules, config["target_modules"]!.AsArray().Select(n => (string)n!));
            Assert.Equal(BaseWeights.Sha256(policy), (string?)config[PeftAdapter.BaseHashKey]);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Kv_cache_decoding_applies_the_adapters_and_the_fused_decoder_refuses_them(string family)
    {
        using var policy = PolicyModel.Create(ConfigOf(family), seed: 111);
        policy.eval();
        var adapters = LoraAdapters.Attach(policy, Options, seed: 112);
        using (var generator = new Generator(113))
        using (no_grad())
            foreach (var (_, _, b) in adapters.Pairs()) b.normal_(0, 0.5, generator);   // large enough to change greedy choices
        int[] prompt = [72, 101, 108, 108, 111];
        var expected = Greedy(policy, prompt, 12);                        // full forward passes, adapters on
        using (policy.WithoutAdapters()) Assert.NotEqual(expected, Greedy(policy, prompt, 12));

        using var decoder = new TorchSharpDecoder(policy);
        var decoded = decoder.Generate(new DecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 12, RowSeeds = [1] });
        Assert.Equal(expected, decoded[0].Tokens);

        var reason = new FusedPolicyDecoderBackend().Unsupported(policy, stopIdCount: 1);
        Assert.Contains(family == "gpt2" ? "LoRA adapters" : "GPT-2 only", reason);
    }

    [Fact]
    public void Loading_onto_other_base_weights_is_refused_naming_both_hashes()
    {
        var directory = TempDirectory("lora-otherbase");
        try
        {
            using (var policy = PolicyModel.Create(Micro(), seed: 61))
                PeftAdapter.Save(directory, LoraAdapters.Attach(policy, Options, seed: 62));
            using var other = PolicyModel.Create(Micro(), seed: 63);
            var error = Assert.Throws<InvalidCheckpointException>(() => PeftAdapter.Load(directory, other));
            Assert.Contains("trained on base weights sha256", error.Message);
            Assert.Contains(BaseWeights.Sha256(other), error.Message);
            Assert.Null(other.Adapters);                                  // nothing left attached
            Assert.All(other.parameters(), p => Assert.True(p.requires_grad));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Loading_refuses_wrong_shapes_and_foreign_settings_listing_every_problem()
    {
        var directory = TempDirectory("lora-bad");
        try
        {
            using var policy = PolicyModel.Create(Micro(), seed: 71);
            policy.eval();
            var baseLogits = LogitsOf(policy);
            var adapters = LoraAdapters.Attach(policy, Options, seed: 72);
            RandomizeB(adapters, 73);
            PeftAdapter.Save(directory, adapters);
            adapters.Dispose();                                           // hooks removed: the base model again
            Assert.Null(policy.Adapters);
            Assert.Equal(baseLogits, LogitsOf(policy));

            var configPath = Path.Combine(directory, PeftAdapter.ConfigFile);
            var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
            config["r"] = 2;                                              // the tensors hold rank 4
            File.WriteAllText(configPath, config.ToJsonString());
            var shapes = Assert.Throws<InvalidCheckpointException>(() => PeftAdapter.Load(directory, policy));
            Assert.Contains("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight is [4, 32], expected [2, 32]", shapes.Message);
            Assert.Contains("lora_B.weight is [96, 4], expected [96, 2]", shapes.Message);
            Assert.Null(policy.Adapters);

            config["r"] = 4;
            config["use_dora"] = true;
            config["bias"] = "all";
            config["target_modules"] = "q_proj|v_proj";
            config["modules_to_save"] = new JsonArray("lm_head");
            File.WriteAllText(configPath, config.ToJsonString());
            var foreign = Assert.Throws<InvalidCheckpointException>(() => PeftAdapter.Load(directory, policy));
            Assert.Equal(4, foreign.Problems.Count);
            Assert.Contains(foreign.Problems, p => p.Contains("use_dora true is not supported"));
            Assert.Contains(foreign.Problems, p => p.Contains("bias \"all\" is not supported"));
            Assert.Contains(foreign.Problems, p => p.Contains("is a regular expression"));
            Assert.Contains(foreign.Problems, p => p.Contains("modules_to_save"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Options_report_one_line_per_bad_key()
    {
        var problems = new LoraOptions { Rank = 0, Alpha = double.NaN, Dropout = 1, TargetModules = ["q_proj", "q_proj", " ", "model.layers.0.q_proj"] }.Problems();
        Assert.Contains(problems, p => p.StartsWith("Rank: must be at least 1 (got 0)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Alpha: ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Dropout: must be in [0, 1) (got 1)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p == "TargetModules: listed twice: q_proj");
        Assert.Contains(problems, p => p == "TargetModules: 1 empty name(s)");
        Assert.Contains(problems, p => p.Contains("not a path or pattern: model.layers.0.q_proj"));
        Assert.Empty(new LoraOptions().Problems());

        using var policy = PolicyModel.Create(Micro(), seed: 81);
        var error = Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(policy, new LoraOptions { Rank = 64, TargetModules = ["q_proj", "c_fc"] }, seed: 1));
        Assert.Contains("TargetModules: q_proj is not a projection of this gpt2 model (it has c_attn, c_proj, c_fc)", error.Message);
        Assert.Contains("Rank: 64 exceeds the narrowest targeted projection's width 32", error.Message);
        Assert.Null(policy.Adapters);
    }

    [Fact]
    public void Disabling_nests_and_disposing_the_policy_disposes_its_adapters()
    {
        var policy = PolicyModel.Create(Micro(), seed: 91);
        LoraAdapters adapters;
        try
        {
            policy.eval();
            var baseLogits = LogitsOf(policy);
            adapters = LoraAdapters.Attach(policy, Options, seed: 92);
            RandomizeB(adapters, 93);
            Assert.Throws<InvalidOperationException>(() => LoraAdapters.Attach(policy, Options, seed: 94));
            using (policy.WithoutAdapters())
            {
                using (policy.WithoutAdapters()) Assert.Equal(baseLogits, LogitsOf(policy));
                Assert.Equal(baseLogits, LogitsOf(policy));   // still off: the outer scope is open
            }
            Assert.NotEqual(baseLogits, LogitsOf(policy));
        }
        finally
        {
            policy.Dispose();
        }
        Assert.Null(policy.Adapters);
        Assert.Throws<ObjectDisposedException>(() => adapters.Disable());
    }

    [Fact]
    public void Merged_forward_matches_an_independent_pytorch_merge_of_the_peft_files()
    {
        var directory = TempDirectory("lora-pytorch");
        try
        {
            using var policy = PolicyModel.Create(Micro(), seed: 101);
            policy.eval();
            var adapters = LoraAdapters.Attach(policy, Options with { Alpha = 12 }, seed: 102);
            RandomizeB(adapters, 103);
            var baseDirectory = Path.Combine(directory, "base");
            var adapterDirectory = Path.Combine(directory, "adapter");
            PolicyCheckpoint.Save(baseDirectory, policy, ByteTokenizer.Instance);   // the base weights only: adapters are not in the state dict
            PeftAdapter.Save(adapterDirectory, adapters, baseDirectory);
            var adapted = LogitsOf(policy);

            // PEFT's merge rule by hand in plain PyTorch (torch 1.13, no peft): for each lora_A/lora_B pair,
            // W += (lora_alpha / r) · B @ A, transposed when fan_in_fan_out (Conv1D's [in, out]); then the
            // reference GPT-2 forward of gpt2_reference.py. It also recomputes the base weights' sha256.
            var input = new JsonObject
            {
                ["reference_dir"] = Path.Combine(AppContext.BaseDirectory, "Models", "Reference"),
                ["base"] = baseDirectory,
                ["adapter"] = adapterDirectory,
                ["tokens"] = new JsonArray(Rows.Select(r => (JsonNode)new JsonArray(r.Select(t => (JsonNode)t).ToArray())).ToArray()),
            };
            var answer = PythonReference.Run(PeftMergeScript, input);
            var expected = answer["logits"]!.AsArray().Select(v => (float)(double)v!).ToArray();
            Assert.Equal((int)answer["pairs"]!, adapters.Paths.Count);
            Assert.Equal((string?)answer["recorded_sha256"], (string?)answer["base_sha256"]);   // the documented hash, recomputed from the file
            var diff = MaxAbsDiff(expected, adapted);
            Assert.True(diff < 1e-4, $"max |Δlogit| C# adapted vs PyTorch merged = {diff}");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private const string PeftMergeScript = """
        spec = json.load(sys.stdin)
        sys.path.insert(0, spec["reference_dir"])
        import os
        from gpt2_reference import read_safetensors, logits_of, Config
        sd, _ = read_safetensors(os.path.join(spec["base"], "model.safetensors"))
        cfg = Config(json.load(open(os.path.join(spec["base"], "config.json"))))
        peft = json.load(open(os.path.join(spec["adapter"], "adapter_config.json")))
        lora, _ = read_safetensors(os.path.join(spec["adapter"], "adapter_model.safetensors"))
        # The base weights' sha256 as docs/OPERATIONS.md defines it, from the base checkpoint's file.
        import hashlib, struct
        digest = hashlib.sha256()
        for name in sorted(sd):
            t = sd[name]
            digest.update(name.encode("utf-8") + b"\0" + struct.pack("<q", t.dim()) + b"".join(struct.pack("<q", d) for d in t.shape))
            digest.update(t.contiguous().numpy().astype("<f4").tobytes())
        scale = peft["lora_alpha"] / peft["r"]
        pairs = 0
        for key in sorted(lora):
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[len("base_model.model."):-len(".lora_A.weight")]
            assert module.startswith("transformer."), module
            name = module[len("transformer."):] + ".weight"
            a, b = lora[key], lora[key.replace("lora_A", "lora_B")]
            delta = scale * (b @ a)
            sd[name] = sd[name] + (delta.t() if peft["fan_in_fan_out"] else delta)
            pairs += 1
        logits = logits_of(sd, cfg, torch.tensor(spec["tokens"]))
        print(json.dumps({"pairs": pairs, "logits": logits.flatten().tolist(), "base_sha256": digest.hexdigest(), "recorded_sha256": peft["prefonline_base_weights_sha256"]}))
        """;

    [Fact]
    public void Placing_the_policy_moves_its_adapters_and_keeps_the_base_frozen()
    {
        using var policy = PolicyModel.Create(Micro(), seed: 121);
        policy.eval();
        var adapters = LoraAdapters.Attach(policy, Options, seed: 122);
        RandomizeB(adapters, 123);
        using var merged = policy.Copy();
        adapters.MergeInto(merged);
        policy.Place(new PrefOnline.Tensors.TensorPlacement("cpu", "bfloat16"));
        merged.Place(new PrefOnline.Tensors.TensorPlacement("cpu", "bfloat16"));
        Assert.All(adapters.TrainableParameters(), p =>
        {
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            Assert.True(p.requires_grad);
        });
        Assert.All(policy.parameters(), p => Assert.False(p.requires_grad));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var adapted = policy.Forward(Tokens(Rows)).to(ScalarType.Float32).data<float>().ToArray();
        var folded = merged.Forward(Tokens(Rows)).to(ScalarType.Float32).data<float>().ToArray();
        Assert.True(MaxAbsDiff(adapted, folded) < 0.1, $"bfloat16 adapted vs merged: {MaxAbsDiff(adapted, folded)}");
    }
}
