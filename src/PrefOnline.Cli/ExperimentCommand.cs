using System.CommandLine;
using System.Globalization;
using PrefOnline.Experiments.Bandit;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline experiment bandit|…</c>: the paper's experiments reproduced with our own objectives.
/// Each sub-verb writes results.json, curves.csv and an SVG plot into <c>--out</c> and prints a table.
/// </summary>
public static class ExperimentCommand
{
    public static Command Create()
    {
        var command = new Command("experiment", "Reproduce the paper's experiments (Tajwar et al. 2024) with PrefOnline's objectives.");
        command.Subcommands.Add(Bandit());
        command.Subcommands.Add(LengthExperimentCommand.Create());
        return command;
    }

    private static Command Bandit()
    {
        var defaults = new BanditOptions();
        var peak = new Option<int>("--peak") { Description = "Reward peak bin c: 70 = where the reference has little mass, 20 = where it has much.", DefaultValueFactory = _ => defaults.Peak };
        var width = new Option<double>("--width") { Description = "Reward width w in bins: r(a) = exp(-((a - c)/w)^2).", DefaultValueFactory = _ => defaults.Width };
        var methods = new Option<string[]>("--methods", "--method")
        {
            Description = $"Methods, comma-separated or repeated: {string.Join(", ", BanditMethods.All)}.",
            DefaultValueFactory = _ => defaults.Methods.ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var modes = new Option<string[]>("--modes", "--mode")
        {
            Description = $"Modes, comma-separated or repeated: {string.Join(", ", BanditModeNames.All)}.",
            DefaultValueFactory = _ => defaults.Modes.Select(BanditModeNames.Name).ToArray(),
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int>("--seeds") { Description = "Number of seeds (runs seeds 1..n).", DefaultValueFactory = _ => defaults.Seeds };
        var samples = new Option<int>("--samples", "-n") { Description = "N: samples per state.", DefaultValueFactory = _ => defaults.SamplesPerState };
        var offlineSteps = new Option<int>("--offline-steps") { Description = "Offline: gradient steps on the one reference batch.", DefaultValueFactory = _ => defaults.OfflineSteps };
        var steps = new Option<int>("--steps", "-T") { Description = "On-policy: gradient steps per batch (sample reuse).", DefaultValueFactory = _ => defaults.OnPolicyStepsPerEpoch };
        var epochs = new Option<int>("--epochs") { Description = "On-policy: number of fresh batches.", DefaultValueFactory = _ => defaults.Epochs };
        var states = new Option<int>("--states") { Description = "On-policy: training states per batch.", DefaultValueFactory = _ => defaults.OnPolicyStates };
        var offlineStates = new Option<int>("--offline-states") { Description = "Offline: training states.", DefaultValueFactory = _ => defaults.OfflineStates };
        var evalStates = new Option<int>("--eval-states") { Description = "Held-out states the reward is measured on.", DefaultValueFactory = _ => defaults.EvalStates };
        var learningRate = new Option<double?>("--lr") { Description = "One Adam learning rate for every method and mode (default: per method and mode, see results.json)." };
        var dpoBeta = new Option<double>("--dpo-beta") { Description = "DPO beta.", DefaultValueFactory = _ => defaults.DpoBeta };
        var ipoMargin = new Option<double>("--ipo-margin") { Description = "IPO target margin m in (l - m)^2 (the official code's beta).", DefaultValueFactory = _ => defaults.IpoMargin };
        var rwrTemperature = new Option<double>("--rwr-temperature") { Description = "RWR temperature tau of exp(r/tau).", DefaultValueFactory = _ => defaults.RwrTemperature };
        var ppoClip = new Option<double>("--ppo-clip") { Description = "PPO clip range epsilon.", DefaultValueFactory = _ => defaults.PpoClipRange };
        var quick = new Option<bool>("--quick") { Description = "Preset that finishes in under a minute: 2 seeds, 30 on-policy epochs, 50 held-out states (explicit options still win)." };
        var output = new Option<string>("--out") { Description = "Directory for results.json, curves.csv and bandit.svg.", DefaultValueFactory = _ => "bandit-results" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads (the bandit's tensors are tiny: 1 is fastest).", DefaultValueFactory = _ => defaults.Threads };

        var command = new Command("bandit", "The paper's didactic bandit: offline vs on-policy, max-likelihood vs negative-gradient methods.");
        foreach (var option in new Option[] { peak, width, methods, modes, seeds, samples, offlineSteps, steps, epochs, states, offlineStates, evalStates, learningRate, dpoBeta, ipoMargin, rwrTemperature, ppoClip, quick, output, threads })
            command.Options.Add(option);

        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            bool Given(Option option) => parse.GetResult(option) is { Implicit: false };

            var options = parse.GetValue(quick) ? defaults.Quick() : defaults;
            if (Given(peak)) options = options with { Peak = parse.GetValue(peak) };
            if (Given(width)) options = options with { Width = parse.GetValue(width) };
            if (Given(methods)) options = options with { Methods = SplitList(parse.GetValue(methods)!) };
            if (Given(modes)) options = options with { Modes = SplitList(parse.GetValue(modes)!).Select(ParseMode).ToArray() };
            if (Given(seeds)) options = options with { Seeds = parse.GetValue(seeds) };
            if (Given(samples)) options = options with { SamplesPerState = parse.GetValue(samples) };
            if (Given(offlineSteps)) options = options with { OfflineSteps = parse.GetValue(offlineSteps) };
            if (Given(steps)) options = options with { OnPolicyStepsPerEpoch = parse.GetValue(steps) };
            if (Given(epochs)) options = options with { Epochs = parse.GetValue(epochs) };
            if (Given(states)) options = options with { OnPolicyStates = parse.GetValue(states) };
            if (Given(offlineStates)) options = options with { OfflineStates = parse.GetValue(offlineStates) };
            if (Given(evalStates)) options = options with { EvalStates = parse.GetValue(evalStates) };
            if (Given(learningRate)) options = options with { LearningRate = parse.GetValue(learningRate) };
            if (Given(dpoBeta)) options = options with { DpoBeta = parse.GetValue(dpoBeta) };
            if (Given(ipoMargin)) options = options with { IpoMargin = parse.GetValue(ipoMargin) };
            if (Given(rwrTemperature)) options = options with { RwrTemperature = parse.GetValue(rwrTemperature) };
            if (Given(ppoClip)) options = options with { PpoClipRange = parse.GetValue(ppoClip) };
            if (Given(threads)) options = options with { Threads = parse.GetValue(threads) };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CliException($"invalid bandit options: {Describe(e)}", CliAction.UsageError);
            }

            var directory = parse.GetValue(output)!;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"bandit: peak {options.Peak}, methods {string.Join(",", options.Methods)}, modes {string.Join(",", options.Modes.Select(BanditModeNames.Name))}, seeds 1..{options.Seeds}, N={options.SamplesPerState}"));
            using var thread = new TensorThread("bandit", options.Threads);
            var results = await thread.RunAsync(() => BanditExperiment.Run(options, run => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {run.Method,-22} {BanditModeNames.Name(run.Mode),-9} seed {run.Seed}: final reward {run.FinalReward:F4}  ({run.GradientSteps} steps, {run.Seconds:F1} s)")), token), token);

            var files = BanditReport.WriteAll(results, directory);
            Console.WriteLine();
            Console.Write(BanditReport.FormatTable(results));
            foreach (var file in files) Console.WriteLine($"wrote {file}");
            return 0;
        }, ct));
        return command;
    }

    /// <summary>The command-line flag of each <see cref="BanditOptions"/> field, for error messages.</summary>
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        [nameof(BanditOptions.Peak)] = "--peak", [nameof(BanditOptions.Width)] = "--width", [nameof(BanditOptions.Methods)] = "--methods",
        [nameof(BanditOptions.Modes)] = "--modes", [nameof(BanditOptions.Seeds)] = "--seeds", [nameof(BanditOptions.SamplesPerState)] = "--samples",
        [nameof(BanditOptions.OfflineSteps)] = "--offline-steps", [nameof(BanditOptions.OnPolicyStepsPerEpoch)] = "--steps",
        [nameof(BanditOptions.Epochs)] = "--epochs", [nameof(BanditOptions.OnPolicyStates)] = "--states", [nameof(BanditOptions.OfflineStates)] = "--offline-states",
        [nameof(BanditOptions.EvalStates)] = "--eval-states", [nameof(BanditOptions.LearningRate)] = "--lr", [nameof(BanditOptions.DpoBeta)] = "--dpo-beta",
        [nameof(BanditOptions.IpoMargin)] = "--ipo-margin", [nameof(BanditOptions.RwrTemperature)] = "--rwr-temperature",
        [nameof(BanditOptions.PpoClipRange)] = "--ppo-clip", [nameof(BanditOptions.Threads)] = "--threads",
    };

    /// <summary>One line: the flag, the value and the rule ("--seeds 0: must be at least 1"), without .NET's
    /// "(Parameter 'x')" and "Actual value was" decorations.</summary>
    private static string Describe(ArgumentException e) => Describe(e, Flags);

    /// <summary><see cref="Describe(ArgumentException)"/> with another options type's field → flag map.</summary>
    internal static string Describe(ArgumentException e, IReadOnlyDictionary<string, string> flags)
    {
        var message = e.Message.Split('\n')[0];
        if (e.ParamName is { } name)
        {
            message = message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
            var flag = flags.GetValueOrDefault(name, name);
            return e is ArgumentOutOfRangeException { ActualValue: { } value }
                ? string.Create(CultureInfo.InvariantCulture, $"{flag} {value}: {message}")
                : $"{flag}: {message}";
        }
        return message;
    }

    /// <summary>Values given as "a,b" or as separate tokens, trimmed, empties dropped.</summary>
    internal static string[] SplitList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();

    private static BanditMode ParseMode(string name)
    {
        try
        {
            return BanditModeNames.Parse(name);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--modes: {e.Message.Split('\n')[0].Replace(" (Parameter 'name')", "", StringComparison.Ordinal)}", CliAction.UsageError);
        }
    }
}
