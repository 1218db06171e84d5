using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Generation;

/// <summary><c>prefonline generate</c> end to end, as a user runs it: on a checkpoint from
/// <c>init</c> and on one written by plain PyTorch (greedy must match PyTorch's), plus the one-line
/// failures.</summary>
public sealed class GenerateCommandTests : IDisposable
{
    private readonly string root = CliProcess.TempDirectory("generate");

    public void Dispose() => Directory.Delete(root, recursive: true);

    private string Init(string name, string seed = "5")
    {
        var dir = Path.Combine(root, name);
        var init = CliProcess.Run("init", "--preset", "tiny", "--seed", seed, "--out", dir);
        Assert.True(init.Code == 0, init.Stderr);
        return dir;
    }

    [Fact]
    public void Generates_k_samples_as_json_reproducibly_under_a_seed()
    {
        var dir = Init("tiny");
        string[] args = ["generate", "--checkpoint", dir, "--prompt", "Once upon a time", "-n", "3", "--max-new-tokens", "12", "--seed", "42",
            "--temperature", "0.9", "--top-p", "0.95", "--top-k", "50", "--json"];
        var run = CliProcess.Run(args);
        Assert.True(run.Code == 0, run.Stderr);
        var json = JsonNode.Parse(run.Stdout)!;
        Assert.Equal(42UL, json["seed"]!.GetValue<ulong>());
        Assert.Equal(16, json["prompt_tokens"]!.GetValue<int>());
        var samples = json["samples"]!.AsArray();
        Assert.Equal(3, samples.Count);
        foreach (var sample in samples)
        {
            var tokens = sample!["tokens"]!.AsArray();
            Assert.InRange(tokens.Count, 1, 12);
            var finish = sample["finish_reason"]!.GetValue<string>();
            Assert.Contains(finish, new[] { "eos", "length" });
            if (finish == "length") Assert.Equal(12, tokens.Count);
            var sum = tokens.Sum(t => t!["logprob"]!.GetValue<double>());
            Assert.Equal(sample["logprob"]!.GetValue<double>(), sum, 1e-4);
            Assert.All(tokens, t => Assert.InRange(t!["logprob"]!.GetValue<double>(), -30, 0));
            // The byte tokenizer: the text is the bytes of the (non-special) tokens.
            var bytes = tokens.Select(t => t!["id"]!.GetValue<int>()).Where(id => id < 256).Select(id => (byte)id).ToArray();
            Assert.Equal(Encoding.UTF8.GetString(bytes), sample["text"]!.GetValue<string>());
        }
        Assert.Equal(run.Stdout, CliProcess.Run(args).Stdout);

        // Plain text output: one completion, exactly its text.
        var text = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "Once upon a time", "--max-new-tokens", "12", "--seed", "42",
            "--temperature", "0");
        Assert.True(text.Code == 0, text.Stderr);
        var greedy = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "Once upon a time", "--max-new-tokens", "12", "--seed", "7",
            "--temperature", "0", "--json");
        Assert.Equal(JsonNode.Parse(greedy.Stdout)!["samples"]![0]!["text"]!.GetValue<string>() + Environment.NewLine, text.Stdout);
    }

    [Fact]
    public void A_checkpoint_with_a_hugging_face_tokenizer_json_generates_and_scores_through_it()
    {
        // The tiny model's 258 ids as a byte-level BPE tokenizer.json: 256 byte tokens (GPT-2's order, not byte values), then
        // <|endoftext|> = 256 and <|pad|> = 257; the byte tokenizer's config goes, so only tokenizer.json can be chosen.
        var dir = Init("tokenizer-json");
        File.Delete(Path.Combine(dir, "tokenizer_config.json"));
        var tokenizer = Learning.Tokenization.ByteLevelBpeTokenizerWriter.Write(dir, 258, new("<|endoftext|>", Padding: "<|pad|>"), "seed corpus");
        Assert.Equal((256, 257), (tokenizer.EndOfSequenceId, tokenizer.PaddingId));

        var run = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "日本 <|endoftext|>", "-n", "2", "--max-new-tokens", "8", "--seed", "4", "--json");
        Assert.True(run.Code == 0, run.Stderr);
        var json = JsonNode.Parse(run.Stdout)!;
        Assert.Equal(20, json["prompt_tokens"]!.GetValue<int>()); // 6 + 1 + 13 bytes: the special token's spelling stays text
        foreach (var sample in json["samples"]!.AsArray())
        {
            var ids = sample!["tokens"]!.AsArray().Select(t => t!["id"]!.GetValue<int>()).ToArray();
            Assert.Equal(tokenizer.Decode(ids), sample["text"]!.GetValue<string>());
        }

        var scored = CliProcess.Run("logprobs", "--checkpoint", dir, "--prompt", "a", "--completion", "中😀", "--eos");
        Assert.True(scored.Code == 0, scored.Stderr);
        var tokens = JsonNode.Parse(scored.Stdout)!["tokens"]!.AsArray();
        Assert.Equal(256, tokens[^1]!["id"]!.GetValue<int>());
        Assert.Equal(Convert.ToHexStringLower(Encoding.UTF8.GetBytes("中😀")), string.Concat(tokens.Select(t => t!["bytes"]!.GetValue<string>())));
    }

    [Fact]
    public void The_json_names_the_end_of_sequence_token_as_the_checkpoint_does()
    {
        // init --arch llama: Llama 3's <|end_of_text|> (id 510 of 512), not GPT-2's <|endoftext|>.
        var dir = Path.Combine(root, "llama");
        var init = CliProcess.Run("init", "--arch", "llama", "--preset", "tiny", "--seed", "3", "--out", dir);
        Assert.True(init.Code == 0, init.Stderr);
        var endOfText = global::PrefOnline.Cli.InitCommand.LlamaSpecialTokens.EndOfSequence;

        // A random init draws its end-of-sequence token about once in 512 tokens: 32 samples of 64 tokens per seed, a few seeds.
        JsonNode? ended = null;
        for (var seed = 1; seed <= 4 && ended is null; seed++)
        {
            var run = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "Q: How are you?", "-n", "32", "--max-new-tokens", "64", "--seed", $"{seed}", "--json");
            Assert.True(run.Code == 0, run.Stderr);
            var samples = JsonNode.Parse(run.Stdout)!["samples"]!.AsArray();
            Assert.DoesNotContain(samples.SelectMany(s => s!["tokens"]!.AsArray()), t => t!["text"]!.GetValue<string>() == "<|endoftext|>");
            ended = samples.FirstOrDefault(s => s!["finish_reason"]!.GetValue<string>() == "eos");
        }
        Assert.NotNull(ended);
        var last = ended["tokens"]!.AsArray()[^1]!;
        Assert.Equal((510, endOfText), (last["id"]!.GetValue<int>(), last["text"]!.GetValue<string>()));

        var scored = CliProcess.Run("logprobs", "--checkpoint", dir, "--prompt", "Q:", "--completion", " fine", "--eos");
        Assert.True(scored.Code == 0, scored.Stderr);
        var tokens = JsonNode.Parse(scored.Stdout)!["tokens"]!.AsArray();
        Assert.Equal((510, endOfText), (tokens[^1]!["id"]!.GetValue<int>(), tokens[^1]!["text"]!.GetValue<string>()));
    }

    [Fact]
    public void Greedy_generation_on_a_pytorch_written_checkpoint_matches_pytorch()
    {
        var prompt = Encoding.UTF8.GetBytes("The cat").Select(b => (int)b).ToArray();
        const int steps = 20;
        var spec = new JsonObject
        {
            ["models"] = new JsonArray(new JsonObject
            {
                ["name"] = "torch-policy",
                ["make"] = new JsonObject
                {
                    ["config"] = new JsonObject { ["vocab_size"] = 258, ["n_positions"] = 64, ["n_embd"] = 32, ["n_layer"] = 2, ["n_head"] = 4 },
                    ["seed"] = 8, ["std"] = 0.3, ["dtype"] = "float32", ["prefix"] = "transformer.", ["buffers"] = true, ["lm_head"] = true,
                },
                ["queries"] = new JsonObject
                {
                    ["greedy"] = new JsonArray(new JsonObject { ["prompt"] = new JsonArray(prompt.Select(p => (JsonNode)p).ToArray()), ["steps"] = steps }),
                },
            }),
        };
        var specPath = Path.Combine(root, "spec.json");
        File.WriteAllText(specPath, spec.ToJsonString());
        if (!File.Exists("/usr/bin/python3")) throw new InvalidOperationException("/usr/bin/python3 missing: apt-get install -y python3 python3-torch");
        var python = CliProcess.Execute("/usr/bin/python3", [Path.Combine(AppContext.BaseDirectory, "Reference", "gpt2_reference.py"), specPath, root]);
        Assert.True(python.Code == 0, python.Stderr.Contains("No module named 'torch'") ? "apt-get install -y python3-torch" : python.Stderr);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "expected.json")))!["torch-policy"]!["greedy"]![0]!.AsArray()
            .Select(t => t!.GetValue<int>()).ToArray();

        var run = CliProcess.Run("generate", "--checkpoint", Path.Combine(root, "torch-policy"), "--prompt", "The cat", "--temperature", "0",
            "--max-new-tokens", $"{steps}", "--json");
        Assert.True(run.Code == 0, run.Stderr);
        var sample = JsonNode.Parse(run.Stdout)!["samples"]![0]!;
        var ours = sample["tokens"]!.AsArray().Select(t => t!["id"]!.GetValue<int>()).ToArray();
        // PyTorch's loop knows no special tokens: up to its first <eos> (256) or <pad> (257) the two
        // must agree; we stop at <eos> and never sample <pad>.
        var special = Array.FindIndex(expected, t => t >= 256);
        var agree = special < 0 ? steps : special;
        Assert.Equal(expected[..agree], ours[..agree]);
        if (special >= 0 && expected[special] == 256) Assert.Equal("eos", sample["finish_reason"]!.GetValue<string>());
        if (special < 0) Assert.Equal("length", sample["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public void A_stop_string_ends_the_text_before_it()
    {
        var dir = Init("tiny-stop", seed: "11");
        var free = JsonNode.Parse(CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "abc", "--temperature", "0", "--max-new-tokens", "30",
            "--json").Stdout)!["samples"]![0]!;
        var tokens = free["tokens"]!.AsArray().Select(t => t!["id"]!.GetValue<int>()).TakeWhile(id => id < 256).ToArray();
        Assert.True(tokens.Length >= 6, "the greedy continuation is too short to cut");
        // A stop string made of two of its bytes; a command-line argument is text, so take an ASCII pair.
        var at = Enumerable.Range(2, tokens.Length - 3).FirstOrDefault(i => tokens[i] is > 0 and < 128 && tokens[i + 1] is > 0 and < 128, -1);
        Assert.True(at >= 0, $"no ASCII pair in the greedy continuation [{string.Join(",", tokens)}] (pick another init seed)");
        var stop = Encoding.ASCII.GetString([(byte)tokens[at], (byte)tokens[at + 1]]);
        var cut = CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "abc", "--temperature", "0", "--max-new-tokens", "30", "--stop", stop,
            "--json");
        Assert.True(cut.Code == 0, cut.Stderr);
        var sample = JsonNode.Parse(cut.Stdout)!["samples"]![0]!;
        Assert.Equal("stop", sample["finish_reason"]!.GetValue<string>());
        Assert.DoesNotContain(stop, sample["text"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_arguments_and_checkpoints_fail_with_one_line()
    {
        var dir = Init("tiny-bad");
        void FailsWith(int code, string expected, params string[] args)
        {
            var run = CliProcess.Run(args);
            Assert.Equal(code, run.Code);
            Assert.Single(run.Stderr.Trim().Split('\n'));
            Assert.Contains(expected, run.Stderr);
        }
        FailsWith(2, "temperature -1", "generate", "--checkpoint", dir, "--prompt", "a", "--temperature", "-1");
        FailsWith(2, "top-p 0", "generate", "--checkpoint", dir, "--prompt", "a", "--top-p", "0");
        FailsWith(2, "samples per prompt 0", "generate", "--checkpoint", dir, "--prompt", "a", "-n", "0");
        FailsWith(2, "below the model's context length 256", "generate", "--checkpoint", dir, "--prompt", "a", "--max-new-tokens", "300");
        FailsWith(2, "stop string 0 is empty", "generate", "--checkpoint", dir, "--prompt", "a", "--stop", "");
        FailsWith(1, "directory does not exist", "generate", "--checkpoint", Path.Combine(root, "absent"), "--prompt", "a");
        var broken = Directory.CreateDirectory(Path.Combine(root, "broken")).FullName;
        File.WriteAllText(Path.Combine(broken, "config.json"), "{\"vocab_size\": 258}");
        FailsWith(1, "config.json lacks n_positions", "generate", "--checkpoint", broken, "--prompt", "a");
        Assert.NotEqual(0, CliProcess.Run("generate", "--prompt", "a").Code);                              // --checkpoint missing
        Assert.NotEqual(0, CliProcess.Run("generate", "--checkpoint", dir, "--prompt", "a", "--top-k", "x").Code); // not a number
    }
}
