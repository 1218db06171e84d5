using System.CommandLine;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline checkpoint rollback --dir DIR [--to N|good] [--reason TEXT]</c>: points <c>latest</c> at an
/// earlier (fully verified) version, <c>good</c> by default, deleting nothing, and moves <c>good</c> back with it
/// when <c>good</c> was newer (so a later guardrail rollback never returns to the abandoned versions); the
/// events go to events.jsonl. When no learner runs, it takes the writer lock and moves <c>latest</c> itself. When a
/// learner holds the store (the usual case inside its pod), it verifies the target and leaves a
/// <c>rollback.request</c> that the learner applies before its next checkpoint, reloading from it.
/// </summary>
public static class CheckpointRollbackCommand
{
    public const string DefaultReason = "manual rollback (prefonline checkpoint rollback)";

    public static Command Create()
    {
        var directory = new CheckpointCliDirectory();
        var to = new Option<string?>("--to") { Description = "The version to roll back to (7, v000007) or 'good' (the default).", HelpName = "N|good" };
        var reason = new Option<string?>("--reason") { Description = "Why, for the audit log (events.jsonl).", HelpName = "TEXT" };
        var command = new Command("rollback", "Point 'latest' back at an earlier version (default: the last good one), and 'good' with it when it was newer; nothing is deleted.");
        directory.AddTo(command);
        command.Options.Add(to);
        command.Options.Add(reason);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            const string verb = "checkpoint rollback";
            var root = directory.Resolve(parse, verb);
            var target = parse.GetValue(to);
            long? version = null;
            if (target is not null && !string.Equals(target.Trim(), "good", StringComparison.OrdinalIgnoreCase))
            {
                if (!CheckpointVersion.TryParse(target, out var parsed))
                    throw new CliException($"{verb}: --to '{target}' is neither a version number (e.g. 7 or v000007) nor 'good'", CliAction.UsageError);
                version = parsed;
            }
            var why = parse.GetValue(reason);
            if (why is not null && string.IsNullOrWhiteSpace(why)) throw new CliException($"{verb}: --reason cannot be empty", CliAction.UsageError);
            if (version is { } v && !new CheckpointReader(root).ListVersions().Contains(v))
                throw new CliException($"{verb}: {CheckpointVersion.DirectoryName(v)} does not exist in {root}");

            var rollbackReason = why ?? DefaultReason;
            CheckpointStore store;
            try
            {
                store = await CheckpointStore.OpenAsync(new CheckpointOptions { Directory = root }, cancellationToken: token);
            }
            catch (CheckpointLockedException e)
            {
                var pending = new CheckpointReader(root).ReadRollbackRequest().Request;
                var request = await CheckpointStore.RequestRollbackAsync(root, version, rollbackReason, cancellationToken: token);
                Console.WriteLine($"a learner holds {root} ({e.Holder ?? "holder unknown"}): requested rollback to {CheckpointVersion.DirectoryName(request.To)} (reason: {request.Reason}); "
                                  + "it applies the request before its next checkpoint and reloads from it"
                                  + (pending is null ? "" : $"; replaces the pending request to {CheckpointVersion.DirectoryName(pending.To)}"));
                return 0;
            }
            await using (store)
            {
                var outcome = await store.RollbackAsync(version, rollbackReason, token);
                var next = $"the next checkpoint will be {CheckpointVersion.DirectoryName(outcome.NextVersion)} with parent {CheckpointVersion.DirectoryName(outcome.To)}";
                var good = outcome.GoodFrom != outcome.GoodTo
                    ? $"; good {(outcome.GoodFrom is { } g ? CheckpointVersion.DirectoryName(g) : "none")} -> {CheckpointVersion.DirectoryName(outcome.To)} (it named a version after the target, now abandoned)"
                    : "";
                Console.WriteLine(outcome.Changed
                    ? $"rolled back {root}: latest {(outcome.From is { } f ? CheckpointVersion.DirectoryName(f) : "none")} -> {CheckpointVersion.DirectoryName(outcome.To)}{good} (reason: {outcome.Reason}); {next}"
                    : $"latest in {root} is already {CheckpointVersion.DirectoryName(outcome.To)}; nothing changed");
                return 0;
            }
        }, ct));
        return command;
    }
}
