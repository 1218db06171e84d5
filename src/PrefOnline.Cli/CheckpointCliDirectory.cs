using System.CommandLine;
using Microsoft.Extensions.Configuration;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Cli;

/// <summary>The <c>--dir</c> / <c>--config</c> pair every checkpoint verb takes, and how they resolve to a directory.</summary>
internal sealed class CheckpointCliDirectory
{
    public const string EnvironmentPrefix = "PREFONLINE__";

    public Option<string?> Dir { get; } = new("--dir")
    {
        Description = "The checkpoint store's root directory (holds 'latest' and the vNNNNNN/ directories).",
        HelpName = "DIR",
    };

    public Option<string?> Config { get; } = new("--config")
    {
        Description = "A worker configuration file; its Checkpoints:Directory is used when --dir is not given.",
        HelpName = "FILE",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Dir);
        command.Options.Add(Config);
    }

    /// <summary>--dir, else Checkpoints:Directory from --config and PREFONLINE__ environment variables; must exist.</summary>
    public string Resolve(ParseResult parse, string verb)
    {
        var directory = parse.GetValue(Dir);
        if (string.IsNullOrWhiteSpace(directory))
        {
            var builder = new ConfigurationBuilder();
            var configFile = parse.GetValue(Config);
            if (!string.IsNullOrWhiteSpace(configFile))
            {
                if (!File.Exists(configFile)) throw new CliException($"{verb}: --config {configFile}: no such file", CliAction.UsageError);
                builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
            }
            builder.AddEnvironmentVariables(EnvironmentPrefix);
            try
            {
                directory = builder.Build()[$"{CheckpointOptions.SectionName}:Directory"];
            }
            catch (InvalidDataException e)
            {
                throw new CliException($"{verb}: --config {configFile}: {e.InnerException?.Message ?? e.Message}", CliAction.UsageError);
            }
            if (string.IsNullOrWhiteSpace(directory))
                throw new CliException($"{verb}: give --dir DIR, or --config FILE with a {CheckpointOptions.SectionName}:Directory setting", CliAction.UsageError);
        }
        if (File.Exists(directory)) throw new CliException($"{verb}: {directory} is a file, not a checkpoint directory", CliAction.UsageError);
        if (!Directory.Exists(directory)) throw new CliException($"{verb}: checkpoint directory {directory} does not exist", CliAction.UsageError);
        return directory;
    }
}
