using System.Globalization;
using System.Text;
using System.Text.Json;
using PrefOnline.Experiments.Reporting;

namespace PrefOnline.Experiments.Bandit;

/// <summary>The bandit's outputs: results.json, curves.csv, an SVG plot and the printed table.</summary>
public static class BanditReport
{
    public const string ResultsFile = "results.json";
    public const string CurvesFile = "curves.csv";
    public const string PlotFile = "bandit.svg";

    /// <summary>Writes the three files into <paramref name="directory"/> (created if missing); returns their paths.</summary>
    public static IReadOnlyList<string> WriteAll(BanditResults results, string directory)
    {
        Directory.CreateDirectory(directory);
        var json = Path.Combine(directory, ResultsFile);
        var csv = Path.Combine(directory, CurvesFile);
        var svg = Path.Combine(directory, PlotFile);
        File.WriteAllText(json, ToJson(results));
        File.WriteAllText(csv, ToCsv(results));
        File.WriteAllText(svg, ToSvg(results));
        return [json, csv, svg];
    }

    public static string ToJson(BanditResults results)
    {
        var o = results.Options;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("experiment", "bandit");
            w.WriteString("source", "Tajwar et al. 2024, didactic bandit; official code github.com/Asap7772/understanding-rlhf bandit_experiment/");
            w.WriteNumber("seconds", Math.Round(results.Seconds, 2));
            w.WriteStartObject("options");
            w.WriteNumber("peak", o.Peak);
            w.WriteNumber("width", o.Width);
            w.WriteNumber("bins", o.Bins);
            w.WriteNumber("reference_samples", o.ReferenceSamples);
            w.WriteNumber("context_dimension", o.ContextDimension);
            w.WriteNumber("eval_states", o.EvalStates);
            ResultsJson.WriteStrings(w, "methods", o.Methods);
            ResultsJson.WriteStrings(w, "modes", o.Modes.Select(BanditModeNames.Name));
            w.WriteNumber("seeds", o.Seeds);
            w.WriteNumber("samples_per_state", o.SamplesPerState);
            w.WriteNumber("offline_steps", o.OfflineSteps);
            w.WriteNumber("offline_states", o.OfflineStates);
            w.WriteNumber("epochs", o.Epochs);
            w.WriteNumber("on_policy_steps_per_epoch", o.OnPolicyStepsPerEpoch);
            w.WriteNumber("on_policy_states", o.OnPolicyStates);
            w.WriteNumber("pretrain_steps", o.PretrainSteps);
            w.WriteNumber("pretrain_learning_rate", o.PretrainLearningRate);
            w.WriteNumber("dpo_beta", o.DpoBeta);
            w.WriteNumber("ipo_margin", o.IpoMargin);
            w.WriteNumber("rwr_temperature", o.RwrTemperature);
            w.WriteNumber("rwr_max_weight", o.RwrMaxWeight);
            w.WriteNumber("ppo_clip_range", o.PpoClipRange);
            w.WriteNumber("negative_weight", o.NegativeWeight);
            w.WriteNumber("offline_min_reward_gap", o.OfflineMinRewardGap);
            w.WriteNumber("on_policy_min_reward_gap", o.OnPolicyMinRewardGap);
            w.WriteStartObject("learning_rates");
            foreach (var method in o.Methods)
            foreach (var mode in o.Modes)
                w.WriteNumber($"{method}/{BanditModeNames.Name(mode)}", o.LearningRateFor(method, mode));
            w.WriteEndObject();
            w.WriteEndObject();

            var (refMean, refStd) = BanditExperiment.MeanAndStd(results.ReferenceRewards);
            w.WriteStartObject("reference_reward");
            w.WriteNumber("mean", refMean);
            w.WriteNumber("std", refStd);
            ResultsJson.WriteNumbers(w, "per_seed", results.ReferenceRewards);
            w.WriteEndObject();

            w.WriteStartObject("pretrained_reward");
            foreach (var (mode, values) in results.PretrainedRewards) ResultsJson.WriteNumbers(w, BanditModeNames.Name(mode), values);
            w.WriteEndObject();

            w.WriteStartArray("summary");
            foreach (var s in results.Summaries)
            {
                w.WriteStartObject();
                w.WriteString("method", s.Method);
                w.WriteString("mode", BanditModeNames.Name(s.Mode));
                w.WriteNumber("final_reward_mean", s.Mean);
                w.WriteNumber("final_reward_std", s.Std);
                w.WriteNumber("budget_samples", s.BudgetSamples);
                w.WriteNumber("reward_at_budget_mean", s.BudgetMean);
                w.WriteNumber("reward_at_budget_std", s.BudgetStd);
                w.WriteNumber("curve_mean", s.CurveMean);
                w.WriteNumber("curve_mean_std", s.CurveStd);
                w.WriteNumber("seeds", s.Seeds);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("runs");
            foreach (var r in results.Runs)
            {
                w.WriteStartObject();
                w.WriteString("method", r.Method);
                w.WriteString("mode", BanditModeNames.Name(r.Mode));
                w.WriteNumber("seed", r.Seed);
                w.WriteNumber("learning_rate", r.LearningRate);
                w.WriteNumber("final_reward", r.FinalReward);
                w.WriteNumber("gradient_steps", r.GradientSteps);
                w.WriteNumber("samples", r.Samples);
                w.WriteNumber("pairs", r.Pairs);
                w.WriteNumber("seconds", Math.Round(r.Seconds, 3));
                // The curve: held-out reward before training (index 0) and after each gradient step.
                ResultsJson.WriteNumbers(w, "curve", r.Curve.Select(v => Math.Round(v, 6)));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Long format, one row per run and step: method,mode,seed,step,reward.</summary>
    public static string ToCsv(BanditResults results)
    {
        var csv = new StringBuilder("method,mode,seed,step,reward\n");
        foreach (var r in results.Runs)
        {
            var mode = BanditModeNames.Name(r.Mode);
            for (var step = 0; step < r.Curve.Count; step++)
                csv.Append(string.Create(CultureInfo.InvariantCulture, $"{r.Method},{mode},{r.Seed},{step},{r.Curve[step]:R}\n"));
        }
        return csv.ToString();
    }

    /// <summary>Two panels, offline and on-policy, x = gradient steps, y = expected held-out reward;
    /// one line per method (mean over seeds) with a ± std band; the reference policy's reward dotted.</summary>
    public static string ToSvg(BanditResults results)
    {
        var o = results.Options;
        var (refMean, _) = BanditExperiment.MeanAndStd(results.ReferenceRewards);
        var panels = new List<PlotPanel>();
        foreach (var mode in o.Modes)
        {
            var series = new List<PlotSeries>();
            var steps = 0;
            foreach (var method in o.Methods)
            {
                var curves = results.Runs.Where(r => r.Method == method && r.Mode == mode).Select(r => r.Curve).ToList();
                if (curves.Count == 0) continue;
                var length = curves.Min(c => c.Count);
                steps = Math.Max(steps, length - 1);
                var mean = new double[length];
                var std = new double[length];
                for (var i = 0; i < length; i++)
                    (mean[i], std[i]) = BanditExperiment.MeanAndStd(curves.Select(c => c[i]).ToArray());
                var label = $"{method} ({BanditModeNames.Name(mode)})";
                series.Add(new PlotSeries(label, MethodColors.Of(method), mode == BanditMode.Offline,
                    Enumerable.Range(0, length).Select(i => (double)i).ToArray(), mean, std));
            }
            var title = mode == BanditMode.Offline
                ? $"offline: one reference batch, T = {o.OfflineSteps}"
                : $"on-policy: {o.Epochs} batches × T = {o.OnPolicyStepsPerEpoch}";
            panels.Add(new PlotPanel(title, "gradient step", "expected reward (held-out states)", 0, Math.Max(1, steps), 0, 1, series,
                [(refMean, $"reference policy {refMean:F3}")]));
        }
        var heading = $"Bandit, reward peak c = {o.Peak} (width {o.Width:G}), N = {o.SamplesPerState}, mean ± std over {o.Seeds} seed{(o.Seeds == 1 ? "" : "s")}";
        return SvgLinePlot.Render(heading, panels);
    }

    /// <summary>The table printed at the end: held-out reward, mean ± std over seeds, for each method:
    /// offline (final), on-policy at the offline batch's sample budget, on-policy (final), and the
    /// curve averages (how fast).</summary>
    public static string FormatTable(BanditResults results)
    {
        var o = results.Options;
        var (refMean, refStd) = BanditExperiment.MeanAndStd(results.ReferenceRewards);
        var budget = (long)o.OfflineStates * o.SamplesPerState;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"bandit  peak c={o.Peak}  width={o.Width:G}  N={o.SamplesPerState}  seeds=1..{o.Seeds}  ({results.Seconds:F0} s)\n");
        sb.Append(CultureInfo.InvariantCulture, $"reference policy reward {refMean:F4} ± {refStd:F4}");
        foreach (var (mode, values) in results.PretrainedRewards)
            sb.Append(CultureInfo.InvariantCulture, $"; after pre-fit ({BanditModeNames.Name(mode)} states) {values.Average():F4}");
        sb.Append('\n');

        var columns = new List<(string Header, Func<string, string> Cell)>();
        string Cell(string method, BanditMode mode, Func<BanditSummary, (double, double)> pick)
        {
            var s = results.Summaries.FirstOrDefault(x => x.Method == method && x.Mode == mode);
            if (s is null) return "—";
            var (m, d) = pick(s);
            return string.Create(CultureInfo.InvariantCulture, $"{m:F3} ± {d:F3}");
        }
        var hasOffline = o.Modes.Contains(BanditMode.Offline);
        var hasOnPolicy = o.Modes.Contains(BanditMode.OnPolicy);
        if (hasOffline) columns.Add(($"offline ({budget} samples)", m => Cell(m, BanditMode.Offline, s => (s.Mean, s.Std))));
        if (hasOnPolicy) columns.Add(($"on-policy @{budget} samples", m => Cell(m, BanditMode.OnPolicy, s => (s.BudgetMean, s.BudgetStd))));
        if (hasOnPolicy) columns.Add(($"on-policy final ({(long)o.Epochs * o.OnPolicyStates * o.SamplesPerState})", m => Cell(m, BanditMode.OnPolicy, s => (s.Mean, s.Std))));
        if (hasOffline) columns.Add(("offline curve mean", m => Cell(m, BanditMode.Offline, s => (s.CurveMean, s.CurveStd))));
        if (hasOnPolicy) columns.Add(("on-policy curve mean", m => Cell(m, BanditMode.OnPolicy, s => (s.CurveMean, s.CurveStd))));

        var widths = columns.Select(c => Math.Max(c.Header.Length, 15) + 2).ToArray();
        sb.Append(CultureInfo.InvariantCulture, $"{"method",-22}");
        for (var i = 0; i < columns.Count; i++) sb.Append(columns[i].Header.PadLeft(widths[i]));
        sb.Append('\n');
        foreach (var method in o.Methods)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{method,-22}");
            for (var i = 0; i < columns.Count; i++) sb.Append(columns[i].Cell(method).PadLeft(widths[i]));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
