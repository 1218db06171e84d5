using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Worker.Tests.ModelVerbs;

/// <summary>The model verbs end to end: <c>init</c>, <c>logprobs</c> on its output and on a checkpoint
/// written by plain PyTorch, and the one-line failures.</summary>
public sealed class ModelVerbTests : IDisposable
{
    private readonly string root = CliProcess.TempDirectory("model-verbs");

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Fact]
    public void Init_writes_a_checkpoint_that_logprobs_reads()
    {
        var dir = Path.Combine(root, "tiny");
        var init = CliProcess.Run("init", "--preset", "tiny", "--seed", "3", "--out", dir);
        Assert.True(init.Code == 0, init.Stderr);
        Assert.Contains("859,136 parameters", init.Stdout);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));

        var result = CliProcess.Run("logprobs", "--checkpoint", dir, "--prompt", "Hi", "--completion", "é!", "--eos");
        Assert.True(result.Code == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        var tokens = json["tokens"]!.AsArray();
        Assert.Equal(4, json["completion_tokens"]!.GetValue<int>());           // é is 2 bytes, then '!', then EOS
        Assert.Equal(["c3", "a9", "21", ""], tokens.Select(t => t!["bytes"]!.GetValue<string>()).ToArray());
        Assert.Equal("<|endoftext|>", tokens[3]!["text"]!.GetValue<string>());
        var sum = tokens.Sum(t => t!["logprob"]!.GetValue<double>());
        Assert.Equal(json["sum_logprob"]!.GetValue<double>(), sum, 4);
        Assert.Equal(sum / 4, json["mean_logprob"]!.GetValue<double>(), 4);
        Assert.All(tokens, t => Assert.InRange(t!["logprob"]!.GetValue<double>(), -20, 0));

        // Same seed → same weights → same answer.
        var again = Path.Combine(root, "tiny-again");
        Assert.Equal(0, CliProcess.Run("init", "--preset", "tiny", "--seed", "3", "--out", again).Code);
        Assert.Equal(result.Stdout.Replace(dir, again, StringComparison.Ordinal),
                     CliProcess.Run("logprobs", "--checkpoint", again, "--prompt", "Hi", "--completion", "é!", "--eos").Stdout);
    }

    [Fact]
    public void Init_arch_llama_writes_a_llama_checkpoint_with_a_tokenizer_json_that_logprobs_and_generate_read()
    {
        var dir = Path.Combine(root, "llama");
        var init = CliProcess.Run("init", "--arch", "llama", "--preset", "tiny", "--seed", "3", "--out", dir);
        Assert.True(init.Code == 0, init.Stderr);
        Assert.Contains("tiny llama policy (791,680 parameters, seed 3)", init.Stdout);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal("llama", config["model_type"]!.GetValue<string>());
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(2, config["num_key_value_heads"]!.GetValue<int>());

        // A Llama 3 style tokenizer.json: 512 tokens, <|end_of_text|> and <|begin_of_text|> last, named alike by every file.
        var tokenizer = HuggingFaceBpeTokenizer.FromDirectory(dir);
        Assert.Equal(512, tokenizer.VocabularySize);
        Assert.Equal(512, config["vocab_size"]!.GetValue<int>());
        Assert.Equal(tokenizer.IdOf("<|end_of_text|>"), tokenizer.EndOfSequenceId);
        Assert.Equal(tokenizer.IdOf("<|begin_of_text|>"), tokenizer.BeginningOfSequenceId);
        Assert.Equal([tokenizer.EndOfSequenceId], tokenizer.StopIds);
        Assert.Equal(tokenizer.EndOfSequenceId, config["eos_token_id"]!.GetValue<int>());
        Assert.Equal(tokenizer.BeginningOfSequenceId, config["bos_token_id"]!.GetValue<int>());
        var generation = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "generation_config.json")))!;
        Assert.Equal(tokenizer.EndOfSequenceId, generation["eos_token_id"]!.GetValue<int>());
        Assert.Equal(tokenizer.BeginningOfSequenceId, generation["bos_token_id"]!.GetValue<int>());
        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!["add_bos_token"]!.GetValue<bool>());
        foreach (var text in new[] { "Q: How are you today?\nA: I am well, thank you.", "a: bcdefg", "naïve café 東京 🙂 <|end_of_text|>", "" })
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        // The merges were learned on the demo's kind of text: its questions take far fewer tokens than bytes.
        Assert.InRange(tokenizer.Encode("Q: What is your favourite food?\nA:").Length, 1, 15);

        var result = CliProcess.Run("logprobs", "--checkpoint", dir, "--prompt", "Hi", "--completion", "é!", "--eos");
        Assert.True(result.Code == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        Assert.Equal(tokenizer.Encode("é!").Length + 1, json["completion_tokens"]!.GetValue<int>());
        // The prompt starts with <|begin_of_text|>, as Hugging Face's post-processor puts it there.
        Assert.Equal(tokenizer.Encode("Hi").Length + 1, json["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(tokenizer.EndOfSequenceId, json["tokens"]!.AsArray()[^1]!["id"]!.GetValue<int>());
        // A fresh init is close to uniform over the 512 tokens: log(1/512) ≈ −6.24 per token.
        Assert.All(json["tokens"]!.AsArray(), t => Assert.InRange(t!["logprob"]!.GetValue<double>(), -8, -4.5));

        var generated = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "Once", "--max-new-tokens", "8", "--seed", "42", "--json");
        Assert.True(generated.Code == 0, generated.Stderr);
        Assert.Equal(tokenizer.Encode("Once").Length + 1, JsonNode.Parse(generated.Stdout)!["prompt_tokens"]!.GetValue<int>());

        // The same files from every init: the tokenizer does not depend on the weights' seed.
        var again = Path.Combine(root, "llama-again");
        Assert.Equal(0, CliProcess.Run("init", "--arch", "llama", "--preset", "tiny", "--seed", "4", "--out", again).Code);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, file)), File.ReadAllBytes(Path.Combine(again, file)));

        Assert.NotEqual(0, CliProcess.Run("init", "--arch", "falcon", "--preset", "tiny", "--out", Path.Combine(root, "falcon")).Code);
    }

    [Fact]
    public void Logprobs_reads_a_checkpoint_written_by_pytorch_and_agrees_with_it()
    {
        var prompt = Encoding.UTF8.GetBytes("The cat").Select(b => (int)b).ToArray();
        var completion = Encoding.UTF8.GetBytes(" sat.").Select(b => (int)b).ToArray();
        var spec = new JsonObject
        {
            ["models"] = new JsonArray(new JsonObject
            {
                ["name"] = "torch-policy",
                ["make"] = new JsonObject
                {
                    ["config"] = new JsonObject { ["vocab_size"] = 258, ["n_positions"] = 64, ["n_embd"] = 32, ["n_layer"] = 2, ["n_head"] = 4, ["resid_pdrop"] = 0.1, ["embd_pdrop"] = 0.1, ["attn_pdrop"] = 0.1 },
                    ["seed"] = 21, ["std"] = 0.3, ["dtype"] = "float16", ["prefix"] = "transformer.", ["buffers"] = true, ["lm_head"] = true,
                },
                ["queries"] = new JsonObject
                {
                    ["logprobs"] = new JsonArray(new JsonObject { ["prompt"] = Ints(prompt), ["completion"] = Ints(completion) }),
                },
            }),
        };
        var specPath = Path.Combine(root, "spec.json");
        File.WriteAllText(specPath, spec.ToJsonString());
        var script = Path.Combine(AppContext.BaseDirectory, "Reference", "gpt2_reference.py");
        if (!File.Exists("/usr/bin/python3")) throw new InvalidOperationException("/usr/bin/python3 missing: apt-get install -y python3 python3-torch");
        var python = CliProcess.Execute("/usr/bin/python3", [script, specPath, root]);
        Assert.True(python.Code == 0, python.Stderr.Contains("No module named 'torch'") ? "apt-get install -y python3-torch" : python.Stderr);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "expected.json")))!["torch-policy"]!["logprobs"]![0]!.GetValue<double>();

        var result = CliProcess.Run("logprobs", "--checkpoint", Path.Combine(root, "torch-policy"), "--prompt", "The cat", "--completion", " sat.");
        Assert.True(result.Code == 0, result.Stderr);
        // The CLI scores in eval mode, so the checkpoint's dropout 0.1 does not disturb the answer.
        Assert.Equal(expected, JsonNode.Parse(result.Stdout)!["sum_logprob"]!.GetValue<double>(), 3);
    }

    [Fact]
    public void Bad_arguments_and_bad_checkpoints_fail_with_one_line()
    {
        var missing = CliProcess.Run("logprobs", "--checkpoint", Path.Combine(root, "absent"), "--prompt", "a", "--completion", "b");
        Assert.Equal(1, missing.Code);
        Assert.Equal($"prefonline: {Path.Combine(root, "absent")}: cannot load checkpoint: directory does not exist", missing.Stderr.Trim());

        var broken = Directory.CreateDirectory(Path.Combine(root, "broken")).FullName;
        File.WriteAllText(Path.Combine(broken, "config.json"), "{\"vocab_size\": 258}");
        var bad = CliProcess.Run("logprobs", "--checkpoint", broken, "--prompt", "a", "--completion", "b");
        Assert.Equal(1, bad.Code);
        Assert.Single(bad.Stderr.Trim().Split('\n'));
        Assert.Contains("config.json lacks n_positions", bad.Stderr);
        Assert.Contains("config.json lacks n_embd", bad.Stderr);

        var full = Directory.CreateDirectory(Path.Combine(root, "occupied")).FullName;
        File.WriteAllText(Path.Combine(full, "keep.txt"), "mine");
        var occupied = CliProcess.Run("init", "--preset", "tiny", "--out", full);
        Assert.NotEqual(0, occupied.Code);
        Assert.Contains("pass --force", occupied.Stderr);
        Assert.True(File.Exists(Path.Combine(full, "keep.txt")));

        Assert.NotEqual(0, CliProcess.Run("init", "--preset", "huge", "--out", Path.Combine(root, "x")).Code);
        Assert.NotEqual(0, CliProcess.Run("logprobs", "--prompt", "a", "--completion", "b").Code);
        Assert.False(Directory.Exists(Path.Combine(root, "x")));
    }

    private static JsonArray Ints(int[] values) => new(values.Select(v => (JsonNode)v).ToArray());
}
