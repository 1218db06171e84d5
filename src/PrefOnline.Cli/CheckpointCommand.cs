using System.CommandLine;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline checkpoint list|verify|rollback</c>: operate on a checkpoint store. The store is named by
/// <c>--dir DIR</c>, or else by <c>Checkpoints:Directory</c> from <c>--config FILE</c> and
/// <c>PREFONLINE__Checkpoints__Directory</c> (so inside the worker's pod no argument is needed).
/// Exit codes: 0 success, 1 a failed check or refused operation, 2 bad arguments or no such directory.
/// </summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var command = new Command("checkpoint", "List, verify or roll back the versions of a checkpoint store.");
        command.Subcommands.Add(CheckpointListCommand.Create());
        command.Subcommands.Add(CheckpointVerifyCommand.Create());
        command.Subcommands.Add(CheckpointRollbackCommand.Create());
        return command;
    }
}
