using PrefOnline.Learning.Tokenization;
using System.CommandLine;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary><c>prefonline init [--arch gpt2|llama] --preset tiny|small [--seed S] --out DIR [--force]</c>: a
/// randomly initialised policy checkpoint (the family's Hugging Face init, byte tokenizer) in the Hugging Face
/// layout: GPT-2 (model_type gpt2) or Llama (model_type llama: RMSNorm, RoPE, SwiGLU, grouped-query attention).</summary>
public static class InitCommand
{
    /// <summary>The values of <c>--arch</c>.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["gpt2", "llama"];

    /// <summary>The shape <c>--arch</c> and <c>--preset</c> name (presets: tiny, small).</summary>
    public static DecoderConfig Shape(string architecture, string preset) => architecture switch
    {
        "gpt2" => Gpt2Config.Preset(preset),
        "llama" => LlamaConfig.Preset(preset),
        _ => throw new ArgumentException($"unknown architecture '{architecture}' (known: {string.Join(", ", Architectures)})", nameof(architecture)),
    };

    /// <summary>Writes the checkpoint (on the calling thread, which must be the tensor thread); returns its parameter count.</summary>
    public static long Write(string directory, DecoderConfig config, ulong seed)
    {
        using var model = PolicyModel.Create(config, seed);
        PolicyCheckpoint.Save(directory, model, ByteTokenizer.Instance);
        return StateDicts.ParameterCount(model);
    }

    public static Command Create()
    {
        var architecture = new Option<string>("--arch") { Description = "Architecture: gpt2 (default) or llama (Llama-family layout, model_type llama).", DefaultValueFactory = _ => "gpt2" };
        architecture.AcceptOnlyFromAmong([.. Architectures]);
        var preset = new Option<string>("--preset") { Description = "Model shape: tiny (≈0.86M parameters; llama ≈0.76M) or small (≈10.8M; llama ≈9.5M).", Required = true };
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
