namespace PrefOnline.Learning.Experiments.Reporting;

/// <summary>One set of axes. Horizontal reference lines (e.g. the reference policy's reward) are drawn
/// grey and dotted, labelled at their right end.</summary>
public sealed record PlotPanel(
    string Title,
    string XLabel,
    string YLabel,
    double XMin,
    double XMax,
    double YMin,
    double YMax,
    IReadOnlyList<PlotSeries> Series,
    IReadOnlyList<(double Y, string Label)> ReferenceLines);
