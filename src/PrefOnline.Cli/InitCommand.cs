using PrefOnline.Learning.Tokenization;
using System.CommandLine;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary><c>prefonline init --preset tiny|small [--seed S] --out DIR [--force]</c>: a randomly
/// initialised policy checkpoint (GPT-2 init, byte tokenizer) in the Hugging Face layout.</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model shape: tiny (≈0.86M parameters) or small (≈10.8M).", Required = true };
        preset.AcceptOnlyFromAmong("tiny", "small");
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initialisation (same seed, same weights).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "Checkpoint directory to write.", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace the directory if it already holds files." };

        var command = new Command("init", "Write a randomly initialised policy checkpoint (config.json, model.safetensors, tokenizer files).");
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

            var config = Gpt2Config.Preset(parse.GetValue(preset)!);
            var seedValue = parse.GetValue(seed);
            using var thread = new TensorThread("tensor");
            var parameters = await thread.RunAsync(() =>
            {
                using var model = PolicyModel.Create(config, seedValue);
                PolicyCheckpoint.Save(directory, model, ByteTokenizer.Instance);
                return StateDicts.ParameterCount(model);
            }, token);
            Console.WriteLine($"wrote {parse.GetValue(preset)} policy ({parameters:N0} parameters, seed {seedValue}) to {Path.GetFullPath(directory)}");
            return 0;
        }, ct));
        return command;
    }
}
