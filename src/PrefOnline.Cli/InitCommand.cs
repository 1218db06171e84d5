using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary><c>prefonline init [--arch gpt2|llama] --preset tiny|small [--seed S] --out DIR [--force]</c>: a
/// randomly initialised policy checkpoint (the family's Hugging Face init) in the Hugging Face layout: GPT-2
/// (model_type gpt2, the byte tokenizer) or Llama (model_type llama: RMSNorm, RoPE, SwiGLU, grouped-query
/// attention) with a Llama 3 style byte-level BPE tokenizer.json of <see cref="LlamaVocabularySize"/> tokens.</summary>
public static class InitCommand
{
    /// <summary>The values of <c>--arch</c>.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["gpt2", "llama"];

    /// <summary>The shape <c>--arch</c> and <c>--preset</c> name (presets: tiny, small).</summary>
    public static DecoderConfig Shape(string architecture, string preset) => architecture switch
    {
        "gpt2" => Gpt2Config.Preset(preset),
        "llama" => LlamaConfig.Preset(preset) with { VocabularySize = LlamaVocabularySize },
        _ => throw new ArgumentException($"unknown architecture '{architecture}' (known: {string.Join(", ", Architectures)})", nameof(architecture)),
    };

    /// <summary>Vocabulary of the Llama checkpoint's tokenizer: 256 byte tokens, 254 merges learned on
    /// <see cref="TokenizerCorpus"/>, then &lt;|end_of_text|&gt; (510) and &lt;|begin_of_text|&gt; (511).</summary>
    public const int LlamaVocabularySize = 512;

    /// <summary>Llama 3's names for its end and beginning of text (its ids are 128001 and 128000).</summary>
    public static readonly ByteLevelBpeSpecialTokens LlamaSpecialTokens = new(EndOfSequence: "<|end_of_text|>", BeginningOfSequence: "<|begin_of_text|>");

    /// <summary>Writes the checkpoint (on the calling thread, which must be the tensor thread); returns its parameter count.
    /// A Llama-family config gets the tokenizer of <see cref="WriteLlamaTokenizer"/> and that tokenizer's vocabulary size;
    /// a GPT-2 config the byte tokenizer.</summary>
    public static long Write(string directory, DecoderConfig config, ulong seed)
    {
        if (config is not LlamaConfig llama) return Write(directory, config, ByteTokenizer.Instance, seed);
        var staging = Directory.CreateTempSubdirectory("prefonline-init-tokenizer-");
        try
        {
            var tokenizer = WriteLlamaTokenizer(staging.FullName);
            return Write(directory, llama with { VocabularySize = tokenizer.VocabularySize }, tokenizer, seed);
        }
        finally
        {
            staging.Delete(recursive: true);
        }
    }

    private static long Write(string directory, DecoderConfig config, ITokenizer tokenizer, ulong seed)
    {
        using var model = PolicyModel.Create(config, seed);
        PolicyCheckpoint.Save(directory, model, tokenizer);
        return StateDicts.ParameterCount(model);
    }

    /// <summary>Writes tokenizer.json, tokenizer_config.json (bos_token, add_bos_token) and generation_config.json
    /// (bos_token_id, eos_token_id) into <paramref name="directory"/>, as a Llama 3 checkpoint ships them, and
    /// returns the tokenizer loaded from them. The same files every time: the merges come from
    /// <see cref="TokenizerCorpus"/> alone, not from the weights' seed.</summary>
    public static HuggingFaceBpeTokenizer WriteLlamaTokenizer(string directory)
    {
        var tokenizer = ByteLevelBpeTokenizerWriter.Write(directory, LlamaVocabularySize, LlamaSpecialTokens, TokenizerCorpus);
        var generation = new JsonObject
        {
            ["bos_token_id"] = tokenizer.BeginningOfSequenceId,
            ["eos_token_id"] = tokenizer.EndOfSequenceId,
        };
        File.WriteAllText(Path.Combine(directory, TokenizerFiles.GenerationConfig), generation.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return HuggingFaceBpeTokenizer.FromDirectory(directory);
    }

    /// <summary>What the Llama tokenizer's merges are learned on: the demo's tasks (its length task continues
    /// the alphabet after "a:" … "h:"; its simulated users ask short everyday questions) and plain English, so
    /// prompts and answers of the demo take a few tokens per word rather than one per byte.</summary>
    public static string TokenizerCorpus { get; } = BuildCorpus();

    private static string BuildCorpus()
    {
        var text = new System.Text.StringBuilder();
        const string Alphabet = "abcdefghijklmnopqrstuvwxyz";
        for (var letter = 0; letter < Alphabet.Length; letter++)
        for (var length = 1; length < Alphabet.Length - letter; length += 3)
            text.Append(Alphabet[letter]).Append(": ").Append(Alphabet, letter + 1, length).Append('\n');
        string[] questions =
        [
            "How are you today?", "What is your favourite colour?", "Describe the weather.", "What did you eat for breakfast?",
            "Tell me about your day.", "What is a good book?", "Where would you like to travel?", "What makes a good friend?",
            "How do you relax?", "What is the best season?", "Name an animal you like.", "What do you do on weekends?",
            "What is your favourite food?", "Describe your home town.", "What music do you enjoy?", "What is a hobby of yours?",
        ];
        string[] answers =
        [
            "I am well, thank you.", "Blue, like the sea and the sky.", "It is sunny and warm, with a light wind from the west.",
            "I had bread, an egg and a cup of tea.", "I worked in the morning, went for a walk, and read a book in the evening.",
            "A good book is one you want to read again.", "I would like to travel to the mountains in the north.",
            "A good friend listens, keeps their word and makes you laugh.", "I relax with a long walk and some quiet music.",
            "The best season is spring, when the days get longer.", "I like the cat, because it is calm and clever.",
            "On weekends I see my family and cook a big dinner.", "My favourite food is soup with fresh bread.",
            "My home town is small and green, with a river and an old bridge.", "I enjoy songs with a simple tune and kind words.",
            "I like to paint, and I have been learning to play the piano.",
        ];
        for (var round = 0; round < 3; round++)
        for (var i = 0; i < questions.Length; i++)
            text.Append("Q: ").Append(questions[i]).Append("\nA: ").Append(answers[(i + round) % answers.Length]).Append("\n\n");
        text.Append("""
            The quick brown fox jumps over the lazy dog. Once upon a time there was a little girl who lived in a village near the forest.
            She liked to walk to the river and watch the birds. One day she found a small boat, and she sailed it down to the sea.
            The people of the town were kind, and they helped each other with their work. In the summer they sang, and in the winter
            they told stories by the fire. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 2026. Yes, no, maybe; thanks! Good morning, good night.
            """);
        return text.ToString();
    }

    public static Command Create()
    {
        var architecture = new Option<string>("--arch") { Description = "Architecture: gpt2 (default) or llama (Llama-family layout, model_type llama).", DefaultValueFactory = _ => "gpt2" };
        architecture.AcceptOnlyFromAmong([.. Architectures]);
        var preset = new Option<string>("--preset") { Description = "Model shape: tiny (≈0.86M parameters; llama ≈0.79M) or small (≈10.8M; llama ≈9.6M).", Required = true };
        preset.AcceptOnlyFromAmong("tiny", "small");
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initialisation (same seed, same weights).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "Checkpoint directory to write.", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace the directory if it already holds files." };

        var command = new Command("init", "Write a randomly initialised policy checkpoint (config.json, model.safetensors, tokenizer files).");
        command.Options.Add(architecture);
        command.Options.Add(preset);
        command.Options.Add(seed);
        command.Options.Add(output);
        command.Options.Add(force);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var directory = parse.GetValue(output)!;
            if (string.IsNullOrWhiteSpace(directory)) throw new CliException("--out must name a directory", CliAction.UsageError);
            if (File.Exists(directory)) throw new CliException($"--out {directory} is a file, not a directory", CliAction.UsageError);
            if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any() && !parse.GetValue(force))
                throw new CliException($"{directory} already holds files; pass --force to replace it", CliAction.UsageError);

            var config = Shape(parse.GetValue(architecture)!, parse.GetValue(preset)!);
            var seedValue = parse.GetValue(seed);
            using var thread = new TensorThread("tensor");
            var parameters = await thread.RunAsync(() => Write(directory, config, seedValue), token);
            Console.WriteLine($"wrote {parse.GetValue(preset)} {config.ModelType} policy ({parameters:N0} parameters, seed {seedValue}) to {Path.GetFullPath(directory)}");
            return 0;
        }, ct));
        return command;
    }
}
