using System.CommandLine;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary><c>prefonline merge --base DIR --adapter DIR --out DIR [--force]</c>: folds a PEFT LoRA
/// adapter into its base checkpoint and writes the result as a full Hugging Face checkpoint (config.json,
/// model.safetensors, tokenizer files) that <c>generate</c> and any serving stack load without PEFT.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var baseOption = new Option<string>("--base") { Description = "The base checkpoint directory the adapter was trained on.", Required = true, HelpName = "DIR" };
        var adapter = new Option<string>("--adapter") { Description = "The PEFT adapter directory (adapter_config.json, adapter_model.safetensors).", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out") { Description = "Directory to write the merged checkpoint to.", Required = true, HelpName = "DIR" };
        var force = new Option<bool>("--force") { Description = "Replace --out if it already holds files." };

        var command = new Command("merge", "Merge a LoRA adapter into its base model and write a full Hugging Face checkpoint.");
        command.Options.Add(baseOption);
        command.Options.Add(adapter);
        command.Options.Add(output);
        command.Options.Add(force);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var (baseDirectory, adapterDirectory, outDirectory) = (parse.GetValue(baseOption)!, parse.GetValue(adapter)!, parse.GetValue(output)!);
            RequireDirectory("--base", baseDirectory);
            RequireDirectory("--adapter", adapterDirectory);
            if (string.IsNullOrWhiteSpace(outDirectory)) throw new CliException("merge: --out must name a directory", CliAction.UsageError);
            var outFull = Path.GetFullPath(outDirectory).TrimEnd(Path.DirectorySeparatorChar);
            foreach (var (name, other) in new[] { ("--base", baseDirectory), ("--adapter", adapterDirectory) })
                if (string.Equals(outFull, Path.GetFullPath(other).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
                    throw new CliException($"merge: --out must not be the {name} directory", CliAction.UsageError);
            if (File.Exists(outDirectory)) throw new CliException($"merge: --out {outDirectory} is a file, not a directory", CliAction.UsageError);
            if (Directory.Exists(outDirectory) && Directory.EnumerateFileSystemEntries(outDirectory).Any() && !parse.GetValue(force))
                throw new CliException($"merge: {outDirectory} already holds files; pass --force to replace it", CliAction.UsageError);

            using var thread = new TensorThread("tensor");
            var summary = await thread.RunAsync(() => MergedCheckpoint.Write(baseDirectory, adapterDirectory, outDirectory), token);
            Console.WriteLine($"merged {summary.Projections} adapted projections into the {summary.ModelType} base ({summary.Parameters:N0} parameters); wrote {outFull}");
            return 0;
        }, ct));
        return command;
    }

    private static void RequireDirectory(string option, string directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) throw new CliException($"merge: {option} must name a directory", CliAction.UsageError);
        if (!Directory.Exists(directory)) throw new CliException($"merge: {option} {directory} does not exist", CliAction.UsageError);
    }
}
