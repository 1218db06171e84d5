using System.CommandLine;
using System.Globalization;
using PrefOnline.Experiments.Length;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline experiment length</c>: the paper's comparison on text — a tiny GPT-2 fitted to a
/// synthetic corpus of broad completion lengths, trained by each method online and offline on the min,
/// mode and skew tasks, with a sample-reuse sweep and a batch-size sweep. Writes results.json,
/// curves.csv, length.svg and length-sweeps.svg into <c>--out</c> and prints the tables.
/// </summary>
internal static class LengthExperimentCommand
{
    /// <summary>The command-line flag of each <see cref="LengthOptions"/> field, for error messages.</summary>
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        [nameof(LengthOptions.Tasks)] = "--tasks", [nameof(LengthOptions.Methods)] = "--methods", [nameof(LengthOptions.Modes)] = "--modes",
        [nameof(LengthOptions.Seeds)] = "--seeds", [nameof(LengthOptions.Updates)] = "--updates", [nameof(LengthOptions.PromptsPerUpdate)] = "--batch",
        [nameof(LengthOptions.SamplesPerPrompt)] = "--samples", [nameof(LengthOptions.InnerSteps)] = "--steps",
        [nameof(LengthOptions.ReuseSweep)] = "--reuse-sweep", [nameof(LengthOptions.BatchSweep)] = "--batch-sweep",
        [nameof(LengthOptions.SweepMethods)] = "--sweep-methods", [nameof(LengthOptions.SweepTask)] = "--sweep-task",
        [nameof(LengthOptions.EvaluateEvery)] = "--evaluate-every", [nameof(LengthOptions.LearningRate)] = "--lr",
        [nameof(LengthOptions.DpoBeta)] = "--dpo-beta", [nameof(LengthOptions.IpoBeta)] = "--ipo-beta", [nameof(LengthOptions.PpoClipRange)] = "--ppo-clip",
        [nameof(LengthOptions.RwrTemperature)] = "--rwr-temperature", [nameof(LengthOptions.KlCoefficient)] = "--kl",
        [nameof(LengthOptions.SkewSharpness)] = "--skew-sharpness", [nameof(LengthOptions.PretrainSteps)] = "--pretrain-steps",
        [nameof(LengthOptions.Threads)] = "--threads", [nameof(LengthOptions.MaxLength)] = "--max-length", [nameof(LengthOptions.MeanLength)] = "--mean-length",
        [nameof(LengthOptions.LengthStd)] = "--length-std", [nameof(LengthOptions.PromptLetters)] = "--prompts",
        [nameof(LengthOptions.PretrainBatch)] = "--pretrain-batch", [nameof(LengthOptions.PretrainLearningRate)] = "--pretrain-lr",
    };

    public static Command Create()
    {
        var defaults = new LengthOptions();
        static string Join<T>(IEnumerable<T> values) => string.Join(",", values);
        var tasks = new Option<string[]>("--tasks", "--task")
        {
            Description = $"Tasks, comma-separated or repeated: {string.Join(", ", LengthTaskNames.All)}.",
            DefaultValueFactory = _ => defaults.Tasks.Select(LengthTaskNames.Name).ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var methods = new Option<string[]>("--methods", "--method")
        {
            Description = $"Methods, comma-separated or repeated: {string.Join(", ", LengthMethods.All)}.",
            DefaultValueFactory = _ => defaults.Methods.ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var modes = new Option<string[]>("--modes", "--mode")
        {
            Description = $"Modes, comma-separated or repeated: {string.Join(", ", LengthModeNames.All)}.",
            DefaultValueFactory = _ => defaults.Modes.Select(LengthModeNames.Name).ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int>("--seeds") { Description = "Number of seeds (runs seeds 1..n; each fits its own reference).", DefaultValueFactory = _ => defaults.Seeds };
        var updates = new Option<int>("--updates") { Description = "Learner updates per run.", DefaultValueFactory = _ => defaults.Updates };
        var batch = new Option<int>("--batch") { Description = "Prompts per update.", DefaultValueFactory = _ => defaults.PromptsPerUpdate };
        var samples = new Option<int>("--samples", "-k") { Description = "K: samples per prompt.", DefaultValueFactory = _ => defaults.SamplesPerPrompt };
        var steps = new Option<int>("--steps", "-T") { Description = "T: gradient steps per update (sample reuse) in the main grid.", DefaultValueFactory = _ => defaults.InnerSteps };
        var reuseSweep = new Option<string[]>("--reuse-sweep")
        {
            Description = "T values of the sample-reuse sweep (online, sweep task), comma-separated; 'none' skips it.",
            DefaultValueFactory = _ => [Join(defaults.ReuseSweep)],
            AllowMultipleArgumentsPerToken = true,
        };
        var batchSweep = new Option<string[]>("--batch-sweep")
        {
            Description = "Prompts-per-update values of the batch sweep (online, sweep task, same sample budget); 'none' skips it.",
            DefaultValueFactory = _ => [Join(defaults.BatchSweep)],
            AllowMultipleArgumentsPerToken = true,
        };
        var sweepMethods = new Option<string[]>("--sweep-methods")
        {
            Description = "Methods the sweeps run, comma-separated.",
            DefaultValueFactory = _ => defaults.SweepMethods.ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var sweepTask = new Option<string>("--sweep-task") { Description = "The task the sweeps run on.", DefaultValueFactory = _ => LengthTaskNames.Name(defaults.SweepTask) };
        var evaluateEvery = new Option<int>("--evaluate-every") { Description = "Measure the policy every this-many updates.", DefaultValueFactory = _ => defaults.EvaluateEvery };
        var pretrainSteps = new Option<int>("--pretrain-steps") { Description = "SFT steps fitting the reference onto the corpus.", DefaultValueFactory = _ => defaults.PretrainSteps };
        var learningRate = new Option<double>("--lr") { Description = "AdamW learning rate, the same for every method and mode.", DefaultValueFactory = _ => defaults.LearningRate };
        var pretrainBatch = new Option<int>("--pretrain-batch") { Description = "Sequences per SFT step.", DefaultValueFactory = _ => defaults.PretrainBatch };
        var pretrainLearningRate = new Option<double>("--pretrain-lr") { Description = "Peak SFT learning rate (decayed linearly to 10 %).", DefaultValueFactory = _ => defaults.PretrainLearningRate };
        var maxLength = new Option<int>("--max-length") { Description = "Corpus: longest valid completion (letters).", DefaultValueFactory = _ => defaults.MaxLength };
        var meanLength = new Option<double>("--mean-length") { Description = "Corpus: mean of the (truncated Gaussian) completion length.", DefaultValueFactory = _ => defaults.MeanLength };
        var lengthStd = new Option<double>("--length-std") { Description = "Corpus: standard deviation of the completion length.", DefaultValueFactory = _ => defaults.LengthStd };
        var promptLetters = new Option<int>("--prompts") { Description = "Corpus: number of prompts (the first n letters, 'a:' ...).", DefaultValueFactory = _ => defaults.PromptLetters };
        var dpoBeta = new Option<double>("--dpo-beta") { Description = "DPO beta.", DefaultValueFactory = _ => defaults.DpoBeta };
        var ipoBeta = new Option<double>("--ipo-beta") { Description = "IPO beta (target margin 1/(2 beta)).", DefaultValueFactory = _ => defaults.IpoBeta };
        var ppoClip = new Option<double>("--ppo-clip") { Description = "PPO clip range epsilon.", DefaultValueFactory = _ => defaults.PpoClipRange };
        var rwrTemperature = new Option<double>("--rwr-temperature") { Description = "RWR temperature tau.", DefaultValueFactory = _ => defaults.RwrTemperature };
        var kl = new Option<double>("--kl") { Description = "KL-to-reference penalty coefficient for every method.", DefaultValueFactory = _ => defaults.KlCoefficient };
        var skewSharpness = new Option<double>("--skew-sharpness") { Description = "Skew task: offline samples of length L kept with probability sigmoid((L - mode)/s).", DefaultValueFactory = _ => defaults.SkewSharpness };
        var quick = new Option<bool>("--quick") { Description = "Preset that finishes in under a minute on 2 cores: 1 seed, 120 SFT steps, 20 updates, methods dpo,reinforce,best_of_n, dpo sweeps T=1,4 and batch 4,16 (explicit options still win)." };
        var output = new Option<string>("--out") { Description = "Directory for results.json, curves.csv and the SVG plots.", DefaultValueFactory = _ => "length-results" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads.", DefaultValueFactory = _ => defaults.Threads };

        var command = new Command("length", "The paper's length tasks on text: a tiny GPT-2, online vs offline, every objective family, reuse and batch sweeps.");
        foreach (var option in new Option[] { tasks, methods, modes, seeds, updates, batch, samples, steps, reuseSweep, batchSweep, sweepMethods, sweepTask, evaluateEvery,
                                             pretrainSteps, pretrainBatch, pretrainLearningRate, maxLength, meanLength, lengthStd, promptLetters, learningRate, dpoBeta, ipoBeta, ppoClip, rwrTemperature, kl, skewSharpness, quick, output, threads })
            command.Options.Add(option);

        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            bool Given(Option option) => parse.GetResult(option) is { Implicit: false };

            var options = parse.GetValue(quick) ? defaults.Quick() : defaults;
            if (Given(tasks)) options = options with { Tasks = ExperimentCommand.SplitList(parse.GetValue(tasks)!).Select(n => Parse(n, "--tasks", LengthTaskNames.Parse)).ToArray() };
            if (Given(methods)) options = options with { Methods = ExperimentCommand.SplitList(parse.GetValue(methods)!) };
            if (Given(modes)) options = options with { Modes = ExperimentCommand.SplitList(parse.GetValue(modes)!).Select(n => Parse(n, "--modes", LengthModeNames.Parse)).ToArray() };
            if (Given(seeds)) options = options with { Seeds = parse.GetValue(seeds) };
            if (Given(updates)) options = options with { Updates = parse.GetValue(updates) };
            if (Given(batch)) options = options with { PromptsPerUpdate = parse.GetValue(batch) };
            if (Given(samples)) options = options with { SamplesPerPrompt = parse.GetValue(samples) };
            if (Given(steps)) options = options with { InnerSteps = parse.GetValue(steps) };
            if (Given(reuseSweep)) options = options with { ReuseSweep = Integers(parse.GetValue(reuseSweep)!, "--reuse-sweep") };
            if (Given(batchSweep)) options = options with { BatchSweep = Integers(parse.GetValue(batchSweep)!, "--batch-sweep") };
            if (Given(sweepMethods)) options = options with { SweepMethods = ExperimentCommand.SplitList(parse.GetValue(sweepMethods)!) };
            if (Given(sweepTask)) options = options with { SweepTask = Parse(parse.GetValue(sweepTask)!, "--sweep-task", LengthTaskNames.Parse) };
            if (Given(evaluateEvery)) options = options with { EvaluateEvery = parse.GetValue(evaluateEvery) };
            if (Given(pretrainSteps)) options = options with { PretrainSteps = parse.GetValue(pretrainSteps) };
            if (Given(pretrainBatch)) options = options with { PretrainBatch = parse.GetValue(pretrainBatch) };
            if (Given(pretrainLearningRate)) options = options with { PretrainLearningRate = parse.GetValue(pretrainLearningRate) };
            if (Given(maxLength)) options = options with { MaxLength = parse.GetValue(maxLength) };
            if (Given(meanLength)) options = options with { MeanLength = parse.GetValue(meanLength) };
            if (Given(lengthStd)) options = options with { LengthStd = parse.GetValue(lengthStd) };
            if (Given(promptLetters)) options = options with { PromptLetters = parse.GetValue(promptLetters) };
            if (Given(learningRate)) options = options with { LearningRate = parse.GetValue(learningRate) };
            if (Given(dpoBeta)) options = options with { DpoBeta = parse.GetValue(dpoBeta) };
            if (Given(ipoBeta)) options = options with { IpoBeta = parse.GetValue(ipoBeta) };
            if (Given(ppoClip)) options = options with { PpoClipRange = parse.GetValue(ppoClip) };
            if (Given(rwrTemperature)) options = options with { RwrTemperature = parse.GetValue(rwrTemperature) };
            if (Given(kl)) options = options with { KlCoefficient = parse.GetValue(kl) };
            if (Given(skewSharpness)) options = options with { SkewSharpness = parse.GetValue(skewSharpness) };
            if (Given(threads)) options = options with { Threads = parse.GetValue(threads) };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CliException($"invalid length options: {ExperimentCommand.Describe(e, Flags)}", CliAction.UsageError);
            }

            var directory = parse.GetValue(output)!;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"length: tasks {string.Join(",", options.Tasks.Select(LengthTaskNames.Name))}, methods {string.Join(",", options.Methods)}, modes {string.Join(",", options.Modes.Select(LengthModeNames.Name))}, seeds 1..{options.Seeds}, {options.Updates} updates × {options.PromptsPerUpdate} prompts × K={options.SamplesPerPrompt}, T={options.InnerSteps}"));
            using var thread = new TensorThread("length", options.Threads);
            var results = await thread.RunAsync(() => LengthExperiment.Run(options, Progress, token), token);

            var files = LengthReport.WriteAll(results, directory);
            Console.WriteLine();
            Console.Write(LengthReport.FormatTable(results));
            foreach (var file in files) Console.WriteLine($"wrote {file}");
            return 0;
        }, ct));
        return command;
    }

    /// <summary>One line per finished run; a reused run (online skew = online min) says so instead of a time.</summary>
    private static void Progress(LengthRunResult run)
    {
        var cost = run.SameRunAs is { } same
            ? $"the {LengthTaskNames.Name(same)} task's run"
            : string.Create(CultureInfo.InvariantCulture, $"{run.Updates} updates, {run.Seconds:F1} s");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {LengthTaskNames.Name(run.Task),-4} {run.Method,-22} {LengthModeNames.Name(run.Mode),-7} seed {run.Seed} T={run.InnerSteps} batch={run.PromptsPerUpdate}: reward {run.Final.Reward:F3}, length {run.Final.MeanLength:F2}  ({cost})"));
    }

    private static T Parse<T>(string name, string flag, Func<string, T> parse)
    {
        try
        {
            return parse(name);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"{flag}: {e.Message.Split('\n')[0].Replace(" (Parameter 'name')", "", StringComparison.Ordinal)}", CliAction.UsageError);
        }
    }

    /// <summary>"1,2,4" (or separate tokens) as integers; "none" is the empty list.</summary>
    private static int[] Integers(IEnumerable<string> values, string flag)
    {
        var items = ExperimentCommand.SplitList(values);
        if (items.Length == 1 && items[0] == "none") return [];
        return items.Select(v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new CliException($"{flag}: '{v}' is not an integer (give e.g. 1,2,4, or none)", CliAction.UsageError)).ToArray();
    }
}
