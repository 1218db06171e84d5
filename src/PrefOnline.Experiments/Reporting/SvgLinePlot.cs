using System.Globalization;
using System.Net;
using System.Text;

namespace PrefOnline.Experiments.Reporting;

/// <summary>
/// Renders line plots as a standalone SVG written by hand (no plotting package is available here):
/// panels side by side, each with axes, "nice" ticks and grid, a mean line per series and a translucent
/// mean ± std band, and one shared legend below. Long series are thinned to at most
/// <see cref="MaxPointsPerSeries"/> points (the last point always kept) so files stay small.
/// </summary>
public static class SvgLinePlot
{
    public const int MaxPointsPerSeries = 400;

    private const double PanelWidth = 520, PanelHeight = 360;
    private const double MarginLeft = 64, MarginRight = 24, MarginTop = 40, MarginBottom = 52;
    private const double LegendRowHeight = 20, LegendColumnWidth = 240;

    public static string Render(string title, IReadOnlyList<PlotPanel> panels)
    {
        ArgumentNullException.ThrowIfNull(panels);
        if (panels.Count == 0) throw new ArgumentException("nothing to plot", nameof(panels));
        var legend = panels.SelectMany(p => p.Series).DistinctBy(s => (s.Label, s.Color, s.Dashed)).ToList();
        var columns = Math.Max(1, (int)(panels.Count * PanelWidth / LegendColumnWidth));
        var legendRows = (legend.Count + columns - 1) / columns;
        var width = panels.Count * PanelWidth;
        var height = 36 + PanelHeight + 16 + legendRows * LegendRowHeight + 12;

        var svg = new StringBuilder();
        svg.Append(Invariant($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"));
        svg.Append(Invariant($"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n"));
        svg.Append(Invariant($"<text x=\"{width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>\n"));
        for (var i = 0; i < panels.Count; i++) RenderPanel(svg, panels[i], i * PanelWidth, 36);

        var legendTop = 36 + PanelHeight + 16;
        for (var k = 0; k < legend.Count; k++)
        {
            var s = legend[k];
            var x = 20 + (k % columns) * LegendColumnWidth;
            var y = legendTop + (k / columns) * LegendRowHeight;
            svg.Append(Invariant($"<line x1=\"{x}\" y1=\"{y}\" x2=\"{x + 28}\" y2=\"{y}\" stroke=\"{s.Color}\" stroke-width=\"2.5\"{Dash(s.Dashed)}/>"));
            svg.Append(Invariant($"<text x=\"{x + 34}\" y=\"{y + 4}\">{Escape(s.Label)}</text>\n"));
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static void RenderPanel(StringBuilder svg, PlotPanel panel, double left, double top)
    {
        var x0 = left + MarginLeft;
        var x1 = left + PanelWidth - MarginRight;
        var y0 = top + PanelHeight - MarginBottom;   // bottom of the plot area (SVG y grows downwards)
        var y1 = top + MarginTop;
        double Px(double x) => x0 + (x - panel.XMin) / (panel.XMax - panel.XMin) * (x1 - x0);
        double Py(double y) => y0 - (Math.Clamp(y, panel.YMin, panel.YMax) - panel.YMin) / (panel.YMax - panel.YMin) * (y0 - y1);

        svg.Append(Invariant($"<text x=\"{(x0 + x1) / 2}\" y=\"{top + 22}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{Escape(panel.Title)}</text>\n"));

        foreach (var tick in NiceTicks(panel.YMin, panel.YMax, 6))
        {
            var y = Py(tick);
            svg.Append(Invariant($"<line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\" stroke=\"#e5e5e5\"/>"));
            svg.Append(Invariant($"<line x1=\"{x0 - 5}\" y1=\"{y}\" x2=\"{x0}\" y2=\"{y}\" stroke=\"black\"/>"));
            svg.Append(Invariant($"<text x=\"{x0 - 8}\" y=\"{y + 4}\" text-anchor=\"end\">{FormatTick(tick)}</text>\n"));
        }
        foreach (var tick in NiceTicks(panel.XMin, panel.XMax, 6))
        {
            var x = Px(tick);
            svg.Append(Invariant($"<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y0}\" stroke=\"#f0f0f0\"/>"));
            svg.Append(Invariant($"<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y0 + 5}\" stroke=\"black\"/>"));
            svg.Append(Invariant($"<text x=\"{x}\" y=\"{y0 + 18}\" text-anchor=\"middle\">{FormatTick(tick)}</text>\n"));
        }
        svg.Append(Invariant($"<rect x=\"{x0}\" y=\"{y1}\" width=\"{x1 - x0}\" height=\"{y0 - y1}\" fill=\"none\" stroke=\"black\"/>\n"));
        svg.Append(Invariant($"<text x=\"{(x0 + x1) / 2}\" y=\"{y0 + 38}\" text-anchor=\"middle\">{Escape(panel.XLabel)}</text>\n"));
        svg.Append(Invariant($"<text transform=\"translate({left + 18},{(y0 + y1) / 2}) rotate(-90)\" text-anchor=\"middle\">{Escape(panel.YLabel)}</text>\n"));

        foreach (var (value, label) in panel.ReferenceLines)
        {
            var y = Py(value);
            svg.Append(Invariant($"<line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\" stroke=\"#777\" stroke-width=\"1.2\" stroke-dasharray=\"2,3\"/>"));
            svg.Append(Invariant($"<text x=\"{x1 - 4}\" y=\"{y - 4}\" text-anchor=\"end\" fill=\"#555\" font-size=\"11\">{Escape(label)}</text>\n"));
        }

        foreach (var s in panel.Series)
        {
            if (s.X.Count != s.Mean.Count || (s.Std is not null && s.Std.Count != s.Mean.Count))
                throw new ArgumentException($"series '{s.Label}' has mismatched lengths");
            var keep = Thin(s.X.Count);
            if (keep.Count == 0) continue;
            if (s.Std is not null)
            {
                var band = new StringBuilder();
                foreach (var i in keep) band.Append(Invariant($"{Px(s.X[i]):F1},{Py(s.Mean[i] + s.Std[i]):F1} "));
                for (var k = keep.Count - 1; k >= 0; k--) band.Append(Invariant($"{Px(s.X[keep[k]]):F1},{Py(s.Mean[keep[k]] - s.Std[keep[k]]):F1} "));
                svg.Append(Invariant($"<polygon points=\"{band.ToString().TrimEnd()}\" fill=\"{s.Color}\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"));
            }
            var line = string.Join(' ', keep.Select(i => Invariant($"{Px(s.X[i]):F1},{Py(s.Mean[i]):F1}")));
            svg.Append(Invariant($"<polyline points=\"{line}\" fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"2\"{Dash(s.Dashed)}><title>{Escape(s.Label)}</title></polyline>\n"));
        }
    }

    /// <summary>Indices to draw: every k-th point so at most <see cref="MaxPointsPerSeries"/> remain, plus the last.</summary>
    private static List<int> Thin(int count)
    {
        var stride = Math.Max(1, (int)Math.Ceiling(count / (double)MaxPointsPerSeries));
        var keep = new List<int>();
        for (var i = 0; i < count; i += stride) keep.Add(i);
        if (count > 0 && keep[^1] != count - 1) keep.Add(count - 1);
        return keep;
    }

    /// <summary>Round tick values (1, 2 or 5 × 10^k apart) covering [min, max] with about <paramref name="target"/> ticks.</summary>
    public static IReadOnlyList<double> NiceTicks(double min, double max, int target)
    {
        if (!(max > min) || !double.IsFinite(min) || !double.IsFinite(max)) throw new ArgumentException($"invalid axis range [{min}, {max}]");
        var raw = (max - min) / Math.Max(1, target - 1);
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= raw);
        var ticks = new List<double>();
        for (var t = Math.Ceiling(min / step - 1e-9) * step; t <= max + step * 1e-9; t += step) ticks.Add(Math.Round(t / step) * step);
        return ticks;
    }

    private static string FormatTick(double value) => Math.Abs(value) < 1e-12 ? "0" : value.ToString("G6", CultureInfo.InvariantCulture);

    private static string Dash(bool dashed) => dashed ? " stroke-dasharray=\"7,4\"" : "";

    private static string Escape(string text) => WebUtility.HtmlEncode(text);

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

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

/// <summary>One line of a plot: mean over seeds at each x, with an optional ± std band.</summary>
/// <param name="Color">An SVG colour, e.g. "#1f77b4".</param>
/// <param name="Dashed">Drawn dashed (used to tell modes apart while colours tell methods apart).</param>
public sealed record PlotSeries(string Label, string Color, bool Dashed, IReadOnlyList<double> X, IReadOnlyList<double> Mean, IReadOnlyList<double>? Std = null);
