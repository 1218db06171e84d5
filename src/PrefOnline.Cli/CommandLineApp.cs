using System.CommandLine;

namespace PrefOnline.Cli;

/// <summary>Builds the verb tree. Each verb lives in its own file and is listed here once.</summary>
public static class CommandLineApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("PrefOnline: keeps a language model learning from live preference feedback.");
        foreach (var verb in Verbs()) root.Subcommands.Add(verb);
        return root;
    }

    private static IEnumerable<Command> Verbs()
    {
        yield return VersionCommand.Create();
        yield return BenchCommand.Create();
        yield return CheckpointCommand.Create();
        yield return ExperimentCommand.Create();
        yield return InitCommand.Create();
        yield return LogProbsCommand.Create();
        yield return MergeCommand.Create();
        yield return ObjectivesCommand.Create();
        yield return GenerateCommand.Create();
        yield return MockBrokerCommand.Create();
        yield return RunCommand.Create();
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var parse = Build().Parse(args);
        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }
}
