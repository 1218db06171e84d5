using PrefOnline.Learning.Models;
using System.Text.Json;
using System.Xml.Linq;
using PrefOnline.Experiments.Bandit;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Experiments.Tests;

public sealed class BanditTests
{
    /// <summary>E_{π_ref}[r] with the histogram replaced by the exact bin probabilities of tanh(Cauchy(−0.7, 0.4)).</summary>
    private static double AnalyticReferenceReward(int peak, double width = 10, int bins = 100)
    {
        static double Cdf(double y) => y <= -1 ? 0 : y >= 1 ? 1
            : 0.5 + Math.Atan((Math.Atanh(y) - BanditEnvironment.CauchyLocation) / BanditEnvironment.CauchyScale) / Math.PI;
        double total = 0;
        for (var a = 0; a < bins; a++)
        {
            var p = Cdf(-1 + 2.0 * (a + 1) / bins) - Cdf(-1 + 2.0 * a / bins);
            total += p * BanditEnvironment.Reward(a, peak, width);
        }
        return total;
    }

    [Theory]
    [InlineData(70, 0.039)]
    [InlineData(20, 0.377)]
    public void Reference_policy_reward_matches_the_paper(int peak, double anchor)
    {
        Assert.Equal(anchor, AnalyticReferenceReward(peak), 3);                        // the distribution itself
        var options = new BanditOptions { Peak = peak };
        for (var seed = 1; seed <= 3; seed++)
        {
            using var scope = NewDisposeScope();
            using var environment = BanditEnvironment.Create(options, seed);
            Assert.InRange(environment.ReferenceReward, anchor - 0.01, anchor + 0.01);   // our 10,000-sample histogram
            Assert.Equal(1.0, environment.ReferenceProbabilities.Sum(), 12);
        }
    }

    [Fact]
    public void Histogram_bins_follow_numpy()
    {
        Assert.Equal(0, BanditEnvironment.BinOf(-1.0, 100));
        Assert.Equal(99, BanditEnvironment.BinOf(1.0, 100));                  // numpy's last bin is closed
        Assert.Equal(50, BanditEnvironment.BinOf(0.0, 100));
        Assert.Equal(70, BanditEnvironment.BinOf(0.41, 100));
        Assert.Equal(1.0, BanditEnvironment.Reward(70, 70, 10));
        Assert.Equal(Math.Exp(-1), BanditEnvironment.Reward(80, 70, 10), 14);
    }

    [Fact]
    public void Policy_has_the_official_shape_and_starts_near_uniform()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        using var policy = new BanditPolicy(100, 100, generator);
        // 100→50 (+LayerNorm 50) → 256 → 256 → 100, with biases.
        Assert.Equal(100 * 50 + 50 + 50 + 50 + 50 * 256 + 256 + 256 * 256 + 256 + 256 * 100 + 100, StateDicts.ParameterCount(policy));
        var logp = policy.forward(rand([4, 100], generator: generator)).log_softmax(1);
        var entropy = -(logp.exp() * logp).sum(1).mean().ToDouble();
        Assert.InRange(entropy, Math.Log(100) - 0.01, Math.Log(100) + 1e-5);   // float32 rounding can overshoot by ~1e-7
    }

    [Fact]
    public void Pretraining_fits_the_policy_onto_the_reference()
    {
        using var scope = NewDisposeScope();
        var options = new BanditOptions();
        using var environment = BanditEnvironment.Create(options, 1);
        using var initGenerator = new Generator(BanditExperiment.DeriveSeed(1, "init"));
        using var policy = new BanditPolicy(100, 100, initGenerator);
        var states = environment.TrainStates(BanditMode.OnPolicy);
        var before = BanditExperiment.KlToReference(policy, states, environment).ToDouble();
        BanditExperiment.Pretrain(policy, states, environment, options);
        var after = BanditExperiment.KlToReference(policy, states, environment).ToDouble();
        Assert.True(before > 0.5, $"KL before the fit {before}");
        Assert.True(after < 0.02, $"KL after 100 Adam steps {after}");
        // Held-out states too: the fitted policy's reward is the reference's.
        Assert.InRange(BanditExperiment.Evaluate(policy, environment), environment.ReferenceReward - 0.005, environment.ReferenceReward + 0.005);
    }

    /// <summary>The acceptance run: the --quick preset's protocol (2 seeds, 30 on-policy epochs) for DPO at c = 70.</summary>
    [Fact]
    public void Quick_run_on_policy_dpo_ends_above_offline_dpo_at_peak_70()
    {
        var options = new BanditOptions { Peak = 70 }.Quick() with { Methods = [BanditMethods.Dpo] };
        var results = BanditExperiment.Run(options);
        var offline = results.Summaries.Single(s => s.Mode == BanditMode.Offline);
        var online = results.Summaries.Single(s => s.Mode == BanditMode.OnPolicy);
        Assert.Equal(2, online.Seeds);
        Assert.True(online.Mean > offline.Mean + 0.05, $"on-policy {online.Mean:F3} vs offline {offline.Mean:F3}");
        for (var seed = 1; seed <= options.Seeds; seed++)
        {
            var on = results.Runs.Single(r => r.Seed == seed && r.Mode == BanditMode.OnPolicy);
            var off = results.Runs.Single(r => r.Seed == seed && r.Mode == BanditMode.Offline);
            Assert.True(on.FinalReward > off.FinalReward, $"seed {seed}: on-policy {on.FinalReward:F3} vs offline {off.FinalReward:F3}");
            // Both start from the same fitted policy, at the reference's reward.
            Assert.InRange(on.Curve[0], 0.02, 0.06);
            Assert.Equal(options.Epochs * options.OnPolicyStepsPerEpoch + 1, on.Curve.Count);
            Assert.Equal(options.Epochs * options.OnPolicyStates * options.SamplesPerState, on.Samples);
            Assert.Equal(options.OfflineStates * options.SamplesPerState, off.Samples);
        }
    }

    [Fact]
    public void Same_options_give_identical_curves()
    {
        var options = new BanditOptions { Seeds = 1, Epochs = 3, OfflineSteps = 10, EvalStates = 10, Methods = [BanditMethods.Ppo, BanditMethods.Ipo] };
        var first = BanditExperiment.Run(options);
        var second = BanditExperiment.Run(options);
        Assert.Equal(first.Runs.Select(r => r.Curve), second.Runs.Select(r => r.Curve));
        Assert.Equal(first.ReferenceRewards, second.ReferenceRewards);
    }

    [Fact]
    public void Reports_are_complete_and_well_formed()
    {
        var options = new BanditOptions { Seeds = 2, Epochs = 2, OfflineSteps = 5, EvalStates = 10, Methods = [BanditMethods.BestOfN, BanditMethods.Reinforce] };
        var results = BanditExperiment.Run(options);
        var directory = Path.Combine(Path.GetTempPath(), $"bandit-report-{Guid.NewGuid():N}");
        try
        {
            var files = BanditReport.WriteAll(results, directory);
            Assert.Equal(3, files.Count);

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, BanditReport.ResultsFile)));
            var root = json.RootElement;
            Assert.Equal(70, root.GetProperty("options").GetProperty("peak").GetInt32());
            Assert.Equal(2 * 2 * 2, root.GetProperty("runs").GetArrayLength());           // methods × modes × seeds
            Assert.Equal(2 * 2, root.GetProperty("summary").GetArrayLength());
            var run = root.GetProperty("runs")[0];
            Assert.Equal(run.GetProperty("gradient_steps").GetInt32() + 1, run.GetProperty("curve").GetArrayLength());
            Assert.Equal(2, root.GetProperty("reference_reward").GetProperty("per_seed").GetArrayLength());

            var csv = File.ReadAllLines(Path.Combine(directory, BanditReport.CurvesFile));
            Assert.Equal("method,mode,seed,step,reward", csv[0]);
            Assert.Equal(results.Runs.Sum(r => r.Curve.Count) + 1, csv.Length);

            var svg = XDocument.Parse(File.ReadAllText(Path.Combine(directory, BanditReport.PlotFile)));
            XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(4, svg.Descendants(ns + "polyline").Count());                    // one mean line per method × mode
            Assert.Equal(4, svg.Descendants(ns + "polygon").Count());                     // and its ± std band
            Assert.Contains(svg.Descendants(ns + "text"), t => t.Value.Contains("best_of_n (on-policy)", StringComparison.Ordinal));

            var table = BanditReport.FormatTable(results);
            Assert.Contains("best_of_n", table);
            Assert.Contains("reinforce", table);
            Assert.Contains("±", table);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Bad_options_fail_with_the_field_named()
    {
        Assert.Contains("valid methods", Assert.Throws<ArgumentException>(() => new BanditOptions { Methods = ["dpo", "sft"] }.Validate()).Message);
        Assert.Equal("Peak", Assert.Throws<ArgumentOutOfRangeException>(() => new BanditOptions { Peak = 100 }.Validate()).ParamName);
        Assert.Equal("SamplesPerState", Assert.Throws<ArgumentOutOfRangeException>(() => new BanditOptions { SamplesPerState = 1 }.Validate()).ParamName);
        Assert.Throws<ArgumentException>(() => new BanditOptions { Modes = [] }.Validate());
        Assert.Throws<ArgumentException>(() => BanditModeNames.Parse("sideways"));
        Assert.Equal(BanditMode.OnPolicy, BanditModeNames.Parse("on-policy"));
        // An empty histogram bin would make KL(π‖π_ref) infinite: refused, not smoothed silently.
        Assert.Throws<InvalidOperationException>(() => BanditEnvironment.Create(new BanditOptions { ReferenceSamples = 50 }, 1));
    }
}
