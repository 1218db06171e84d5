using PrefOnline.Learning.Objectives;

namespace PrefOnline.Experiments.Reporting;

/// <summary>
/// One colour per objective in every experiment's plots (the Tableau palette), so a method looks the same in
/// the bandit's and the length task's figures: same colour for a method, solid online, dashed offline.
/// </summary>
public static class MethodColors
{
    private static readonly Dictionary<string, string> ByObjective = new(StringComparer.Ordinal)
    {
        [ObjectiveNames.BestOfN] = "#1f77b4",
        [ObjectiveNames.Rwr] = "#ff7f0e",
        [ObjectiveNames.Reinforce] = "#2ca02c",
        [ObjectiveNames.Ppo] = "#d62728",
        [ObjectiveNames.Dpo] = "#9467bd",
        [ObjectiveNames.Ipo] = "#8c564b",
        [ObjectiveNames.NegativeGradientSft] = "#e377c2",
        [ObjectiveNames.Sft] = "#17becf",
        [ObjectiveNames.ConservativeDpo] = "#bcbd22",
    };

    /// <summary>Colours for series that are not methods (sweep values), in order.</summary>
    public static IReadOnlyList<string> Sequence { get; } = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

    public static string Of(string objective) => ByObjective.GetValueOrDefault(objective, "#7f7f7f");
}
