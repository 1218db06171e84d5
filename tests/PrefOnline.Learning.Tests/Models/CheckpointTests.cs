using PrefOnline.Learning.Tokenization;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors.Serialization;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

public sealed class CheckpointTests : IDisposable
{
    private readonly string root = TempDirectory("checkpoints");

    public void Dispose() => Directory.Delete(root, recursive: true);

    private string SaveMicro(string name, ulong seed = 1)
    {
        var dir = Path.Combine(root, name);
        using var model = PolicyModel.Create(Micro(), seed);
        PolicyCheckpoint.Save(dir, model, ByteTokenizer.Instance);
        return dir;
    }

    [Fact]
    public void Save_then_load_gives_the_same_model_config_and_tokenizer()
    {
        var dir = Path.Combine(root, "policy");
        using var model = PolicyModel.Create(Micro(dropout: 0.1), 3);
        PolicyCheckpoint.Save(dir, model, ByteTokenizer.Instance);
        Assert.Equal(["config.json", "model.safetensors", "tokenizer_config.json"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)!).Order().ToArray());

        using var loaded = PolicyCheckpoint.Load(dir);
        Assert.Equal(model.Config, loaded.Config);
        Assert.Equal(258, loaded.Tokenizer.VocabularySize);
        Assert.Equal(256, loaded.Tokenizer.EndOfSequenceId);
        var saved = model.state_dict();
        var read = loaded.Model.state_dict();
        Assert.Equal(saved.Keys.Order(), read.Keys.Order());
        foreach (var (name, tensor) in saved)
            Assert.True(tensor.eq(read[name]).all().ToDouble() == 1, $"{name} changed in the round trip");

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal("gpt2", config["model_type"]!.GetValue<string>());
        Assert.Equal(32, config["n_embd"]!.GetValue<int>());
        Assert.Equal(0.1, config["attn_pdrop"]!.GetValue<double>());
        Assert.Equal("pt", SafeTensorsFile.ReadHeader(Path.Combine(dir, "model.safetensors")).Metadata["format"]);
    }

    [Fact]
    public void A_gpt2_bpe_tokenizer_travels_with_the_checkpoint()
    {
        var tokenizer = Tests.Tokenization.HandVocabulary.Tokenizer(("h", "e"), ("l", "l"));
        var dir = Path.Combine(root, "bpe");
        using var model = PolicyModel.Create(Micro() with { VocabularySize = tokenizer.VocabularySize }, 4);
        PolicyCheckpoint.Save(dir, model, tokenizer);
        Assert.True(File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt")));
        using var loaded = PolicyCheckpoint.Load(dir);
        var read = Assert.IsType<Gpt2BpeTokenizer>(loaded.Tokenizer);
        Assert.Equal(tokenizer.Encode("hello hell"), read.Encode("hello hell"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal(tokenizer.EndOfSequenceId, config["eos_token_id"]!.GetValue<int>());

        // A tokenizer the model cannot embed is refused at load too (e.g. files swapped by hand).
        var small = Path.Combine(root, "bpe-small-model");
        using var tooSmall = PolicyModel.Create(Micro() with { VocabularySize = 258 }, 4);
        PolicyCheckpoint.Save(small, tooSmall, ByteTokenizer.Instance);
        File.Delete(Path.Combine(small, "tokenizer_config.json"));
        Tests.Tokenization.HandVocabulary.Write(small, [("h", "e"), ("l", "l")]);
        Assert.Contains("the tokenizer has 259 tokens but the model's vocab_size is 258", Load(small));
    }

    [Fact]
    public void Saving_over_an_existing_checkpoint_replaces_it_and_leaves_no_temp_directories()
    {
        var dir = SaveMicro("policy", seed: 1);
        File.WriteAllText(Path.Combine(dir, "stale.txt"), "from an older save");
        using var second = PolicyModel.Create(Micro(), 2);
        PolicyCheckpoint.Save(dir, second, ByteTokenizer.Instance);
        Assert.False(File.Exists(Path.Combine(dir, "stale.txt")));
        Assert.Equal(["policy"], Directory.GetFileSystemEntries(root).Select(f => Path.GetFileName(f)!).ToArray());
        using var loaded = PolicyCheckpoint.LoadModel(dir);
        Assert.True(loaded.state_dict()["wte.weight"].eq(second.state_dict()["wte.weight"]).all().ToDouble() == 1);
    }

    [Fact]
    public void Weights_file_round_trip_carries_its_config()
    {
        var path = Path.Combine(root, "policy.safetensors");
        using var model = PolicyModel.Create(Micro() with { LayerNormEpsilon = 1e-6 }, 5);
        PolicyCheckpoint.SaveWeightsFile(path, model);
        using var loaded = PolicyCheckpoint.LoadWeightsFile(path);
        Assert.Equal(model.Config, loaded.Config);
        Assert.True(loaded.state_dict()["h.1.mlp.c_fc.weight"].eq(model.state_dict()["h.1.mlp.c_fc.weight"]).all().ToDouble() == 1);
    }

    [Fact]
    public void Missing_directory_and_files_are_named()
    {
        Assert.Contains("directory does not exist", Load(Path.Combine(root, "nope")));
        var empty = Directory.CreateDirectory(Path.Combine(root, "empty")).FullName;
        Assert.Contains("missing config.json", Load(empty));

        var dir = SaveMicro("no-weights");
        File.Delete(Path.Combine(dir, "model.safetensors"));
        Assert.Contains("missing model.safetensors", Load(dir));
        File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "pickle");
        Assert.Contains("only pytorch_model.bin", Load(dir));
    }

    [Fact]
    public void Bad_config_json_is_reported_with_every_problem()
    {
        var dir = SaveMicro("bad-config");
        var configPath = Path.Combine(dir, "config.json");
        File.WriteAllText(configPath, "{ \"n_embd\": 32, ");
        Assert.Contains("config.json is not valid JSON", Load(dir));

        File.WriteAllText(configPath, """
            {"model_type": "gpt2", "vocab_size": "many", "n_positions": 64, "n_embd": 30, "n_layer": 2, "n_head": 4,
             "activation_function": "relu", "tie_word_embeddings": false}
            """);
        var message = Load(dir);
        Assert.Contains("vocab_size must be an integer", message);
        Assert.Contains("activation_function 'relu'", message);
        Assert.Contains("tie_word_embeddings is false", message);
        Assert.DoesNotContain("\n", message);

        File.WriteAllText(configPath, """{"vocab_size": 258, "n_positions": 64, "n_embd": 30, "n_layer": 2, "n_head": 4}""");
        Assert.Contains("n_embd 30 must be a positive multiple of n_head 4", Load(dir));

        File.WriteAllText(configPath, """{"model_type": "falcon", "vocab_size": 258}""");
        Assert.Contains("model_type 'falcon' is not supported (supported: gpt2, llama, qwen2, qwen3, mistral)", Load(dir));
    }

    [Fact]
    public void Tensor_name_and_shape_mismatches_are_all_listed()
    {
        var dir = SaveMicro("mismatch");
        var weights = Path.Combine(dir, "model.safetensors");
        var tensors = ReadAll(weights);
        tensors.Remove("h.1.ln_2.bias");
        tensors.Remove("wpe.weight");
        tensors["h.0.attn.c_attn.weight"] = zeros([96, 32]);          // transposed: Linear layout, not Conv1D
        tensors["h.7.mlp.c_fc.weight"] = zeros([1]);
        SafeTensorsFile.Write(weights, tensors);
        var message = Load(dir);
        Assert.Contains("missing tensors: ", message);
        Assert.Contains("h.1.ln_2.bias", message);
        Assert.Contains("wpe.weight", message);
        Assert.Contains("unexpected tensors: h.7.mlp.c_fc.weight", message);
        Assert.Contains("h.0.attn.c_attn.weight is [96, 32], the config needs [32, 96]", message);
    }

    [Fact]
    public void Untied_lm_head_non_finite_weights_and_broken_files_are_refused()
    {
        var dir = SaveMicro("untied");
        var weights = Path.Combine(dir, "model.safetensors");
        var tensors = ReadAll(weights);
        tensors["lm_head.weight"] = tensors["wte.weight"].add(1);
        SafeTensorsFile.Write(weights, tensors);
        Assert.Contains("lm_head.weight differs from wte.weight", Load(dir));

        tensors.Remove("lm_head.weight");
        tensors["ln_f.weight"] = full([32], double.NaN);
        SafeTensorsFile.Write(weights, tensors);
        Assert.Contains("NaN or Inf: ln_f.weight", Load(dir));

        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        Assert.Contains("model.safetensors", Load(dir));

        var header = Encoding.UTF8.GetBytes("{\"wte.weight\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}");
        var file = new byte[8 + header.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(weights, file);
        Assert.Contains("wte.weight holds Int64, not a floating-point type", Load(dir));
    }

    [Fact]
    public void Tokenizer_larger_than_the_model_vocabulary_is_refused()
    {
        var dir = Path.Combine(root, "small-vocab");
        using var model = PolicyModel.Create(Micro() with { VocabularySize = 100 }, 0);
        Assert.Throws<ArgumentException>(() => PolicyCheckpoint.Save(dir, model, ByteTokenizer.Instance));
        Assert.False(Directory.Exists(dir));
    }

    private static string Load(string dir)
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => PolicyCheckpoint.Load(dir).Dispose());
        return e.Message;
    }

    private static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var content = SafeTensorsFile.Read(path);
        return content.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    }
}
