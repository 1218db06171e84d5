using System.Globalization;
using System.Text;
using System.Text.Json;
using PrefOnline.Experiments.Bandit;
using PrefOnline.Experiments.Reporting;

namespace PrefOnline.Experiments.Length;

/// <summary>The length experiment's outputs: results.json, curves.csv, two SVG plots (tasks; sweeps) and the printed tables.</summary>
public static class LengthReport
{
    public const string ResultsFile = "results.json";
    public const string CurvesFile = "curves.csv";
    public const string PlotFile = "length.svg";
    public const string SweepPlotFile = "length-sweeps.svg";

    /// <summary>Writes every file into <paramref name="directory"/> (created if missing); returns their paths.</summary>
    public static IReadOnlyList<string> WriteAll(LengthResults results, string directory)
    {
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        void Write(string name, string text)
        {
            var path = Path.Combine(directory, name);
            File.WriteAllText(path, text);
            files.Add(path);
        }
        Write(ResultsFile, ToJson(results));
        Write(CurvesFile, ToCsv(results));
        Write(PlotFile, ToSvg(results));
        if (SweepRuns(results).Any()) Write(SweepPlotFile, ToSweepSvg(results));
        return files;
    }

    private static string Mode(LengthMode mode) => LengthModeNames.Name(mode);

    private static string Task(LengthTask task) => LengthTaskNames.Name(task);

    public static string ToJson(LengthResults results)
    {
        var o = results.Options;
        var corpus = results.Corpus;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("experiment", "length");
            w.WriteString("source", "Tajwar et al. 2024, synthetic length tasks (min / mode / skew), on PrefOnline's Learner, PolicySampler and a tiny GPT-2");
            w.WriteNumber("seconds", Math.Round(results.Seconds, 2));
            w.WriteStartObject("options");
            w.WriteNumber("max_length", o.MaxLength);
            w.WriteNumber("mean_length", o.MeanLength);
            w.WriteNumber("length_std", o.LengthStd);
            w.WriteNumber("prompt_letters", o.PromptLetters);
            w.WriteNumber("pretrain_steps", o.PretrainSteps);
            w.WriteNumber("pretrain_batch", o.PretrainBatch);
            w.WriteNumber("pretrain_learning_rate", o.PretrainLearningRate);
            ResultsJson.WriteStrings(w, "tasks", o.Tasks.Select(Task));
            ResultsJson.WriteStrings(w, "methods", o.Methods);
            ResultsJson.WriteStrings(w, "modes", o.Modes.Select(Mode));
            w.WriteNumber("seeds", o.Seeds);
            w.WriteNumber("updates", o.Updates);
            w.WriteNumber("prompts_per_update", o.PromptsPerUpdate);
            w.WriteNumber("samples_per_prompt", o.SamplesPerPrompt);
            w.WriteNumber("inner_steps", o.InnerSteps);
            w.WriteNumber("sample_budget", o.SampleBudget);
            ResultsJson.WriteNumbers(w, "reuse_sweep", o.ReuseSweep.Select(v => (double)v));
            ResultsJson.WriteNumbers(w, "batch_sweep", o.BatchSweep.Select(v => (double)v));
            ResultsJson.WriteStrings(w, "sweep_methods", o.SweepMethods);
            w.WriteString("sweep_task", Task(o.SweepTask));
            w.WriteNumber("evaluate_every", o.EvaluateEvery);
            w.WriteNumber("dpo_beta", o.DpoBeta);
            w.WriteNumber("ipo_beta", o.IpoBeta);
            w.WriteNumber("ppo_clip_range", o.PpoClipRange);
            w.WriteNumber("rwr_temperature", o.RwrTemperature);
            w.WriteNumber("kl_coefficient", o.KlCoefficient);
            w.WriteNumber("skew_sharpness", o.SkewSharpness);
            w.WriteNumber("learning_rate", o.LearningRate);
            w.WriteEndObject();

            w.WriteStartObject("corpus");
            w.WriteNumber("mode_length", corpus.ModeLength);
            w.WriteNumber("expected_length", corpus.ExpectedLength);
            ResultsJson.WriteNumbers(w, "length_probabilities", corpus.LengthProbabilities.Select(p => Math.Round(p, 6)));
            w.WriteEndObject();

            w.WriteStartArray("references");
            foreach (var r in results.References)
            {
                w.WriteStartObject();
                w.WriteNumber("seed", r.Seed);
                ResultsJson.WriteFinite(w, "mean_length", r.MeanLength);
                w.WriteNumber("valid_mass", r.ValidMass);
                w.WriteNumber("total_variation_to_corpus", r.TotalVariation);
                w.WriteNumber("pretrain_seconds", Math.Round(r.PretrainSeconds, 2));
                w.WriteStartObject("reward");
                foreach (var (task, value) in r.Rewards) w.WriteNumber(Task(task), value);
                w.WriteEndObject();
                w.WriteStartObject("offline_mean_length");
                foreach (var (task, value) in r.OfflineMeanLength) ResultsJson.WriteFinite(w, Task(task), value);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("summary");
            foreach (var s in results.Summaries)
            {
                w.WriteStartObject();
                w.WriteString("task", Task(s.Task));
                w.WriteString("method", s.Method);
                w.WriteString("mode", Mode(s.Mode));
                w.WriteNumber("inner_steps", s.InnerSteps);
                w.WriteNumber("prompts_per_update", s.PromptsPerUpdate);
                w.WriteNumber("seeds", s.Seeds);
                w.WriteNumber("final_reward_mean", s.Reward);
                w.WriteNumber("final_reward_std", s.RewardStd);
                ResultsJson.WriteFinite(w, "final_mean_length", s.MeanLength);
                ResultsJson.WriteFinite(w, "final_mean_length_std", s.MeanLengthStd);
                w.WriteNumber("final_valid_mass", s.ValidMass);
                w.WriteNumber("curve_reward_mean", s.CurveReward);
                w.WriteNumber("curve_reward_std", s.CurveRewardStd);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("runs");
            foreach (var r in results.Runs)
            {
                w.WriteStartObject();
                w.WriteString("task", Task(r.Task));
                w.WriteString("method", r.Method);
                w.WriteString("mode", Mode(r.Mode));
                w.WriteNumber("seed", r.Seed);
                w.WriteNumber("inner_steps", r.InnerSteps);
                w.WriteNumber("prompts_per_update", r.PromptsPerUpdate);
                w.WriteNumber("learning_rate", r.LearningRate);
                w.WriteNumber("updates", r.Updates);
                w.WriteNumber("gradient_steps", r.GradientSteps);
                w.WriteNumber("skipped_steps", r.SkippedSteps);
                w.WriteNumber("pairs", r.Pairs);
                w.WriteNumber("samples", r.Samples);
                if (r.FinalKl is { } kl) ResultsJson.WriteFinite(w, "final_kl", kl);
                w.WriteNumber("final_reward", r.Final.Reward);
                ResultsJson.WriteFinite(w, "final_mean_length", r.Final.MeanLength);
                w.WriteNumber("final_valid_mass", r.Final.ValidMass);
                w.WriteNumber("seconds", Math.Round(r.Seconds, 3));
                if (r.SameRunAs is { } same) w.WriteString("same_run_as", Task(same));
                w.WriteStartArray("curve");
                foreach (var p in r.Curve)
                {
                    w.WriteStartObject();
                    w.WriteNumber("update", p.Update);
                    w.WriteNumber("samples", p.Samples);
                    w.WriteNumber("reward", Math.Round(p.Reward, 6));
                    ResultsJson.WriteFinite(w, "mean_length", Math.Round(p.MeanLength, 4));
                    w.WriteNumber("valid_mass", Math.Round(p.ValidMass, 6));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Long format, one row per run and measurement.</summary>
    public static string ToCsv(LengthResults results)
    {
        var csv = new StringBuilder("task,method,mode,seed,inner_steps,prompts_per_update,update,samples,reward,mean_length,valid_mass\n");
        foreach (var r in results.Runs)
        foreach (var p in r.Curve)
            csv.Append(string.Create(CultureInfo.InvariantCulture,
                $"{Task(r.Task)},{r.Method},{Mode(r.Mode)},{r.Seed},{r.InnerSteps},{r.PromptsPerUpdate},{p.Update},{p.Samples},{p.Reward:R},{p.MeanLength:R},{p.ValidMass:R}\n"));
        return csv.ToString();
    }

    private static IEnumerable<LengthRunResult> GridRuns(LengthResults results, LengthTask task) =>
        results.Runs.Where(r => r.Task == task && r.InnerSteps == results.Options.InnerSteps && r.PromptsPerUpdate == results.Options.PromptsPerUpdate
                                && results.Options.Methods.Contains(r.Method));

    private static IEnumerable<LengthRunResult> SweepRuns(LengthResults results)
    {
        var o = results.Options;
        return results.Runs.Where(r => r.Task == o.SweepTask && r.Mode == LengthMode.Online && o.SweepMethods.Contains(r.Method)
                                       && ((r.PromptsPerUpdate == o.PromptsPerUpdate && o.ReuseSweep.Contains(r.InnerSteps))
                                           || (r.InnerSteps == o.InnerSteps && o.BatchSweep.Contains(r.PromptsPerUpdate))));
    }

    /// <summary>Mean ± std over seeds of runs sharing one configuration, point by point (x = samples).</summary>
    private static PlotSeries Series(IReadOnlyList<LengthRunResult> runs, string label, string color, bool dashed)
    {
        var length = runs.Min(r => r.Curve.Count);
        var x = runs[0].Curve.Take(length).Select(p => (double)p.Samples).ToArray();
        var mean = new double[length];
        var std = new double[length];
        for (var i = 0; i < length; i++) (mean[i], std[i]) = BanditExperiment.MeanAndStd(runs.Select(r => r.Curve[i].Reward).ToArray());
        return new PlotSeries(label, color, dashed, x, mean, std);
    }

    /// <summary>One panel per task: x = samples drawn, y = exact reward; solid online, dashed offline; the reference dotted.</summary>
    public static string ToSvg(LengthResults results)
    {
        var o = results.Options;
        var panels = new List<PlotPanel>();
        foreach (var task in o.Tasks)
        {
            var series = new List<PlotSeries>();
            foreach (var method in o.Methods)
            foreach (var mode in o.Modes)
            {
                var runs = GridRuns(results, task).Where(r => r.Method == method && r.Mode == mode).ToList();
                if (runs.Count > 0) series.Add(Series(runs, $"{method} ({Mode(mode)})", MethodColors.Of(method), mode == LengthMode.Offline));
            }
            var reference = results.References.Average(r => r.Rewards[task]);
            panels.Add(new PlotPanel($"task {Task(task)}", "samples drawn", "expected reward (exact)", 0, Math.Max(1, o.SampleBudget), 0, 1, series,
                [(reference, "reference (SFT)")]));
        }
        return SvgLinePlot.Render(string.Create(CultureInfo.InvariantCulture,
            $"Length tasks: online (solid) vs offline (dashed), tiny GPT-2, K = {o.SamplesPerPrompt}, {o.PromptsPerUpdate} prompts/update, T = {o.InnerSteps}, mean ± std over {o.Seeds} seed{(o.Seeds == 1 ? "" : "s")}"), panels);
    }

    /// <summary>The sweeps: reuse (one line per T) and batch size (one line per batch), online, on the sweep task.</summary>
    public static string ToSweepSvg(LengthResults results)
    {
        var o = results.Options;
        var sweeps = SweepRuns(results).ToList();
        var reuse = new List<PlotSeries>();
        var batch = new List<PlotSeries>();
        for (var m = 0; m < o.SweepMethods.Count; m++)
        {
            var method = o.SweepMethods[m];
            for (var i = 0; i < o.ReuseSweep.Count; i++)
            {
                var runs = sweeps.Where(r => r.Method == method && r.InnerSteps == o.ReuseSweep[i] && r.PromptsPerUpdate == o.PromptsPerUpdate).ToList();
                if (runs.Count > 0) reuse.Add(Series(runs, $"{method} T={o.ReuseSweep[i]}", MethodColors.Sequence[i % MethodColors.Sequence.Count], m > 0));
            }
            for (var i = 0; i < o.BatchSweep.Count; i++)
            {
                var runs = sweeps.Where(r => r.Method == method && r.PromptsPerUpdate == o.BatchSweep[i] && r.InnerSteps == o.InnerSteps).ToList();
                if (runs.Count > 0) batch.Add(Series(runs, $"{method} batch={o.BatchSweep[i]}", MethodColors.Sequence[(i + 4) % MethodColors.Sequence.Count], m > 0));
            }
        }
        var reference = results.References.Average(r => r.Rewards[o.SweepTask]);
        var panels = new List<PlotPanel>();
        if (reuse.Count > 0) panels.Add(new PlotPanel($"sample reuse T (task {Task(o.SweepTask)}, online)", "samples drawn", "expected reward (exact)", 0, o.SampleBudget, 0, 1, reuse, [(reference, "reference")]));
        if (batch.Count > 0) panels.Add(new PlotPanel($"prompts per update (task {Task(o.SweepTask)}, online)", "samples drawn", "expected reward (exact)", 0, o.SampleBudget, 0, 1, batch, [(reference, "reference")]));
        return SvgLinePlot.Render(string.Create(CultureInfo.InvariantCulture,
            $"Length sweeps: same sample budget ({o.SampleBudget}), solid {o.SweepMethods.FirstOrDefault()}, dashed others, mean ± std over {o.Seeds} seed{(o.Seeds == 1 ? "" : "s")}"), panels);
    }

    private static string Cell(double mean, double std, string format) =>
        string.Create(CultureInfo.InvariantCulture, $"{mean.ToString(format, CultureInfo.InvariantCulture)} ± {std.ToString(format, CultureInfo.InvariantCulture)}");

    /// <summary>The printed tables: per task, offline vs online final reward and mean length (mean ± std over
    /// seeds); then the reuse and batch sweeps.</summary>
    public static string FormatTable(LengthResults results)
    {
        var o = results.Options;
        var c = results.Corpus;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"length  K={o.SamplesPerPrompt}  prompts/update={o.PromptsPerUpdate}  updates={o.Updates}  T={o.InnerSteps}  samples/run={o.SampleBudget}  seeds=1..{o.Seeds}  ({results.Seconds:F0} s)\n");
        var (refLength, refLengthStd) = BanditExperiment.MeanAndStd(results.References.Select(r => r.MeanLength).ToArray());
        sb.Append(CultureInfo.InvariantCulture,
            $"corpus: valid lengths 1..{c.MaxLength}, mean {c.ExpectedLength:F2}, mode {c.ModeLength}, P(L ≤ 3) = {c.LengthProbabilities.Take(4).Sum():F3}\n");
        sb.Append(CultureInfo.InvariantCulture,
            $"reference (SFT): mean length {refLength:F2} ± {refLengthStd:F2}, valid mass {results.References.Average(r => r.ValidMass):F3}, TV to corpus {results.References.Average(r => r.TotalVariation):F3}\n");

        foreach (var task in o.Tasks)
        {
            var reference = BanditExperiment.MeanAndStd(results.References.Select(r => r.Rewards[task]).ToArray());
            sb.Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"task {Task(task)}: reference reward {reference.Mean:F3} ± {reference.Std:F3}");
            if (task == LengthTask.Skew && o.Tasks.Contains(LengthTask.Min)) sb.Append(", online runs = the min task's (same reward, on-policy)");
            var offlineLengths = results.References.Where(r => r.OfflineMeanLength.ContainsKey(task)).Select(r => r.OfflineMeanLength[task]).ToArray();
            if (offlineLengths.Length > 0) sb.Append(CultureInfo.InvariantCulture, $", offline data mean length {offlineLengths.Average():F2}");
            sb.Append('\n');
            var columns = new List<string>();
            foreach (var mode in o.Modes) columns.Add($"{Mode(mode)} reward");
            foreach (var mode in o.Modes) columns.Add($"{Mode(mode)} curve avg");
            foreach (var mode in o.Modes) columns.Add($"{Mode(mode)} length");
            sb.Append(CultureInfo.InvariantCulture, $"{"method",-22}");
            foreach (var h in columns) sb.Append(h.PadLeft(18));
            sb.Append('\n');
            foreach (var method in o.Methods)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{method,-22}");
                foreach (var mode in o.Modes) sb.Append(Summary(results, task, method, mode, o.InnerSteps, o.PromptsPerUpdate, s => Cell(s.Reward, s.RewardStd, "F3")).PadLeft(18));
                foreach (var mode in o.Modes) sb.Append(Summary(results, task, method, mode, o.InnerSteps, o.PromptsPerUpdate, s => Cell(s.CurveReward, s.CurveRewardStd, "F3")).PadLeft(18));
                foreach (var mode in o.Modes) sb.Append(Summary(results, task, method, mode, o.InnerSteps, o.PromptsPerUpdate, s => Cell(s.MeanLength, s.MeanLengthStd, "F2")).PadLeft(18));
                sb.Append('\n');
            }
        }

        if (o.SweepMethods.Count > 0 && o.ReuseSweep.Count > 0)
        {
            sb.Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"sample reuse (online, task {Task(o.SweepTask)}, {o.PromptsPerUpdate} prompts/update, {o.SampleBudget} samples): final reward (curve avg)\n");
            sb.Append(CultureInfo.InvariantCulture, $"{"method",-22}");
            foreach (var t in o.ReuseSweep) sb.Append($"T={t}".PadLeft(24));
            sb.Append('\n');
            foreach (var method in o.SweepMethods)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{method,-22}");
                foreach (var t in o.ReuseSweep) sb.Append(Summary(results, o.SweepTask, method, LengthMode.Online, t, o.PromptsPerUpdate, s => Cell(s.Reward, s.RewardStd, "F3") + string.Create(CultureInfo.InvariantCulture, $" ({s.CurveReward:F3})")).PadLeft(24));
                sb.Append('\n');
            }
        }
        if (o.SweepMethods.Count > 0 && o.BatchSweep.Count > 0)
        {
            sb.Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"batch size (online, task {Task(o.SweepTask)}, T={o.InnerSteps}, {o.SampleBudget} samples): final reward (curve avg)\n");
            sb.Append(CultureInfo.InvariantCulture, $"{"method",-22}");
            foreach (var b in o.BatchSweep) sb.Append($"{b} prompts ({Math.Max(1, o.SampleBudget / ((long)b * o.SamplesPerPrompt))} upd)".PadLeft(24));
            sb.Append('\n');
            foreach (var method in o.SweepMethods)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{method,-22}");
                foreach (var b in o.BatchSweep) sb.Append(Summary(results, o.SweepTask, method, LengthMode.Online, o.InnerSteps, b, s => Cell(s.Reward, s.RewardStd, "F3") + string.Create(CultureInfo.InvariantCulture, $" ({s.CurveReward:F3})")).PadLeft(24));
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    private static string Summary(LengthResults results, LengthTask task, string method, LengthMode mode, int innerSteps, int prompts, Func<LengthSummary, string> format)
    {
        var s = results.Summaries.FirstOrDefault(x => x.Task == task && x.Method == method && x.Mode == mode && x.InnerSteps == innerSteps && x.PromptsPerUpdate == prompts);
        return s is null ? "—" : format(s);
    }
}
