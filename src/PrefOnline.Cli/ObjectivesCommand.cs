using System.CommandLine;
using PrefOnline.Learning.Objectives;

namespace PrefOnline.Cli;

/// <summary><c>prefonline objectives</c>: the values <c>Learner:Objective</c> accepts, read from
/// <see cref="ObjectiveCatalog"/> (the same descriptions the learner and the configuration check use).</summary>
public static class ObjectivesCommand
{
    public static Command Create()
    {
        var command = new Command("objectives", "List the training objectives Learner:Objective accepts, with their inputs and losses.");
        command.SetAction(_ =>
        {
            Console.Write(Table());
            return 0;
        });
        return command;
    }

    /// <summary>One row per objective: name, family, pairwise, inputs read, hyper-parameters, loss.</summary>
    public static string Table()
    {
        var rows = ObjectiveCatalog.All.Select(d => new[]
        {
            d.Name, d.Family, d.Pairwise ? "pairs" : "sequences",
            d.Needs == ObjectiveInput.None ? "-" : d.Needs.ToString().Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant(),
            d.Hyperparameters.Count == 0 ? "-" : string.Join(",", d.Hyperparameters),
            d.Formula,
        }).Prepend(["objective", "family", "trains on", "needs", "hyper-parameters", "loss"]).ToList();
        var widths = Enumerable.Range(0, rows[0].Length - 1).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new System.Text.StringBuilder();
        foreach (var row in rows)
            text.AppendLine(string.Join("  ", row.Select((cell, c) => c < widths.Length ? cell.PadRight(widths[c]) : cell)));
        return text.ToString();
    }
}
