namespace PrefOnline.Learning.Experiments.Reporting;

/// <summary>One line of a plot: mean over seeds at each x, with an optional ± std band.</summary>
/// <param name="Color">An SVG colour, e.g. "#1f77b4".</param>
/// <param name="Dashed">Drawn dashed (used to tell modes apart while colours tell methods apart).</param>
public sealed record PlotSeries(string Label, string Color, bool Dashed, IReadOnlyList<double> X, IReadOnlyList<double> Mean, IReadOnlyList<double>? Std = null);
