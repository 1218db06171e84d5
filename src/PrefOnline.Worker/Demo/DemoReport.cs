using System.Globalization;
using System.Text;
using System.Text.Json;
using PrefOnline.Experiments.Reporting;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Demo;

/// <summary>Writes the demo's report: <c>reward-curve.svg</c> (users' reward and KL over time) and <c>summary.json</c>; formats the printed summary.</summary>
public static class DemoReport
{
    public const string CurveFile = "reward-curve.svg";
    public const string SummaryFile = "summary.json";

    public static IReadOnlyList<string> Write(string directory, DemoSummary summary, IReadOnlyList<DemoProgressPoint> points, IReadOnlyList<UpdatePoint> updates)
    {
        Directory.CreateDirectory(directory);
        var json = Path.Combine(directory, SummaryFile);
        File.WriteAllText(json, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var written = new List<string> { Path.GetFullPath(json) };
        var rewards = points.Where(p => p.UsersReward is not null).ToList();
        if (rewards.Count >= 2)
        {
            var svg = Path.Combine(directory, CurveFile);
            File.WriteAllText(svg, Svg(summary, rewards, updates));
            written.Add(Path.GetFullPath(svg));
        }
        return written;
    }

    public static string Svg(DemoSummary summary, IReadOnlyList<DemoProgressPoint> rewards, IReadOnlyList<UpdatePoint> updates)
    {
        var x = rewards.Select(p => p.Seconds).ToList();
        var y = rewards.Select(p => p.UsersReward!.Value).ToList();
        var xMax = Math.Max(1, x.Max());
        var (yMin, yMax) = Pad(y.Min(), y.Max());
        var references = new List<(double, string)>();
        if (summary.RewardBefore is { } start) references.Add((start, "starting policy"));
        var panels = new List<PlotPanel>
        {
            new("Simulated users' reward (hidden utility of the latest rollouts)", "seconds", "utility (nats)", 0, xMax, Math.Min(yMin, summary.RewardBefore ?? yMin), Math.Max(yMax, summary.RewardBefore ?? yMax),
                [new PlotSeries($"users' reward ({summary.Preference})", "#1f77b4", false, x, y)], references),
        };
        var kl = updates.Where(u => u.Kl is not null).ToList();
        if (kl.Count >= 2)
        {
            var (klMin, klMax) = Pad(0, kl.Max(u => u.Kl!.Value));
            panels.Add(new PlotPanel("KL to the reference per update", "seconds", "nats per sequence", 0, xMax, klMin, klMax,
                [new PlotSeries("KL(policy || reference)", "#d62728", false, kl.Select(u => u.At).ToList(), kl.Select(u => u.Kl!.Value).ToList())], []));
        }
        var title = string.Create(CultureInfo.InvariantCulture, $"PrefOnline demo: reward {F(summary.RewardBefore)} → {F(summary.RewardAfter)} in {summary.DurationSeconds:0} s ({summary.Updates} updates)");
        return SvgLinePlot.Render(title, panels);
    }

    public static string Format(DemoSummary s)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Demo summary ({s.DurationSeconds:0} s, objective {s.Objective}, users prefer {s.Preference}{(s.PreferenceShifted ? ", after a shift" : "")}):");
        text.AppendLine(CultureInfo.InvariantCulture, $"  users' reward: {F(s.RewardBefore)} (starting policy v{s.FirstPolicyVersion}, {s.RewardBeforeCount} rollouts) -> {F(s.RewardAfter)} (last {s.RewardAfterCount} rollouts, policy v{s.LastPolicyVersion}); gain {F(s.RewardGain)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  {s.Updates} updates, {s.Rollbacks} rollbacks, {s.CheckpointsWritten} checkpoints, {s.LabelsAbsorbed} labels absorbed, KL to reference {F(s.FinalKl)}");
        text.Append(CultureInfo.InvariantCulture, $"  checkpoints in {s.CheckpointDirectory}");
        return text.ToString();
    }

    private static (double, double) Pad(double min, double max)
    {
        if (max - min < 1e-6) return (min - 0.5, max + 0.5);
        var pad = (max - min) * 0.08;
        return (min - pad, max + pad);
    }

    private static string F(double? value) => value is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";
}
