using System.CommandLine;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline checkpoint verify --dir DIR [--version N | --all]</c>: full verification (manifest, file
/// set, sizes, SHA-256) of <c>latest</c>, one version, or every version. Exit 0 when all checked versions
/// are valid; 1 with the reason on stderr otherwise.
/// </summary>
public static class CheckpointVerifyCommand
{
    public static Command Create()
    {
        var directory = new CheckpointCliDirectory();
        var version = new Option<string?>("--version") { Description = "The version to verify (7, v7 or v000007); default: the one 'latest' names.", HelpName = "N" };
        var all = new Option<bool>("--all") { Description = "Verify every version in the store." };
        var command = new Command("verify", "Verify a checkpoint's manifest and every file's size and SHA-256.");
        directory.AddTo(command);
        command.Options.Add(version);
        command.Options.Add(all);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            const string verb = "checkpoint verify";
            var root = directory.Resolve(parse, verb);
            var reader = new CheckpointReader(root);
            var requested = parse.GetValue(version);
            if (requested is not null && parse.GetValue(all)) throw new CliException($"{verb}: give --version or --all, not both", CliAction.UsageError);

            IReadOnlyList<long> targets;
            if (parse.GetValue(all))
            {
                targets = reader.ListVersions().Reverse().ToList();
                if (targets.Count == 0) throw new CliException($"{verb}: {root} holds no versions");
            }
            else if (requested is not null)
            {
                if (!CheckpointVersion.TryParse(requested, out var parsed))
                    throw new CliException($"{verb}: --version '{requested}' is not a version number (e.g. 7 or v000007)", CliAction.UsageError);
                targets = [parsed];
            }
            else
            {
                var pointers = reader.ReadPointers();
                if (pointers.Latest is null)
                    throw new CliException(pointers.Problems.Count > 0
                        ? $"{verb}: {pointers.Problems[0]}; give --version N"
                        : $"{verb}: {root} has no 'latest' pointer; give --version N");
                targets = [pointers.Latest.Value];
            }

            var invalid = new List<CheckpointVerification>();
            foreach (var target in targets)
            {
                var verdict = await reader.VerifyAsync(target, CheckpointVerificationLevel.Full, token);
                if (verdict.IsValid)
                    Console.WriteLine($"{CheckpointVersion.DirectoryName(target)}: valid ({verdict.Manifest!.Files.Count} files, {CheckpointListCommand.Size(verdict.Manifest.TotalBytes)}, sha256 checked)");
                else
                    invalid.Add(verdict);
            }
            if (invalid.Count == 0) return 0;
            if (targets.Count == 1) throw new CliException($"{CheckpointVersion.DirectoryName(invalid[0].Version)} is invalid: {invalid[0].Reason}");
            foreach (var verdict in invalid)
                await Console.Error.WriteLineAsync($"prefonline: {CheckpointVersion.DirectoryName(verdict.Version)} is invalid: {verdict.Reason}");
            await Console.Error.WriteLineAsync($"prefonline: {invalid.Count} of {targets.Count} versions are invalid");
            return CliAction.Failure;
        }, ct));
        return command;
    }
}
