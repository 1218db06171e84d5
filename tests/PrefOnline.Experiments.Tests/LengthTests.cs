using System.Text.Json;
using System.Xml.Linq;
using PrefOnline.Experiments.Length;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Experiments.Tests;

/// <summary>One SFT-fitted reference (the --quick preset's fit, seed 1) shared by the tests that need a
/// realistic reference: fitting it takes seconds, so it is done once per test class.</summary>
public sealed class LengthReferenceFixture : IDisposable
{
    public LengthReferenceFixture()
    {
        Options = new LengthOptions().Quick();
        Corpus = new LengthCorpus(Options.MaxLength, Options.MeanLength, Options.LengthStd, Options.PromptLetters);
        Policy = LengthExperiment.Pretrain(Options, Corpus, seed: 1);
    }

    public LengthOptions Options { get; }

    public LengthCorpus Corpus { get; }

    public PolicyModel Policy { get; }

    public void Dispose() => Policy.Dispose();
}

public sealed class LengthTests(LengthReferenceFixture fixture) : IClassFixture<LengthReferenceFixture>
{
    private static readonly LengthCorpus Corpus = new(maxLength: 20, meanLength: 12, lengthStd: 4, promptLetters: 8);

    private static int[] Tokens(string text, bool endOfSequence = true) =>
        [.. LengthExperiment.Tokenizer.Encode(text), .. endOfSequence ? [LengthExperiment.Tokenizer.EndOfSequenceId] : Array.Empty<int>()];

    // ---- the corpus -----------------------------------------------------------------------------------

    [Fact]
    public void Corpus_lengths_are_broad_with_little_mass_at_the_min_length_peak()
    {
        var p = Corpus.LengthProbabilities;
        Assert.Equal(21, p.Count);
        Assert.Equal(0, p[0]);
        Assert.Equal(1.0, p.Sum(), 12);
        Assert.All(Enumerable.Range(1, 20), l => Assert.True(p[l] > 0, $"P(L = {l}) = {p[l]}"));   // every valid length is reachable
        Assert.Equal(12, Corpus.ModeLength);
        Assert.InRange(Corpus.ExpectedLength, 11.5, 12.0);                                        // truncation at 20 pulls the mean below 12
        var std = Math.Sqrt(Enumerable.Range(1, 20).Sum(l => p[l] * (l - Corpus.ExpectedLength) * (l - Corpus.ExpectedLength)));
        Assert.InRange(std, 3.5, 4.0);                                                            // broad: σ ≈ 4 letters
        var shortMass = p.Take(4).Sum();                                                          // L ≤ 3
        Assert.InRange(shortMass, 0.005, 0.03);                                                   // the min peak: rare, not impossible
        // Hand-computed: exp(-0.5·((1 − 12)/4)²) / Σ_l exp(-0.5·((l − 12)/4)²).
        var z = Enumerable.Range(1, 20).Sum(l => Math.Exp(-0.5 * Math.Pow((l - 12) / 4.0, 2)));
        Assert.Equal(Math.Exp(-0.5 * Math.Pow(11 / 4.0, 2)) / z, p[1], 12);
    }

    [Fact]
    public void Corpus_draws_are_seeded_and_follow_the_distribution()
    {
        static int[] Draw(ulong seed, int n)
        {
            var random = new Xoshiro256StarStar(seed);
            return Enumerable.Range(0, n).Select(_ => Corpus.LengthAt(random.NextDouble())).ToArray();
        }
        Assert.Equal(Draw(7, 500), Draw(7, 500));
        Assert.NotEqual(Draw(7, 500), Draw(8, 500));
        var draws = Draw(11, 40_000);
        for (var l = 1; l <= 20; l++)
        {
            var frequency = draws.Count(d => d == l) / (double)draws.Length;
            Assert.InRange(frequency, Corpus.LengthProbabilities[l] - 0.01, Corpus.LengthProbabilities[l] + 0.01);
        }
        Assert.Equal(1, Corpus.LengthAt(0.0));
        Assert.Equal(20, Corpus.LengthAt(0.999_999_999_999));
    }

    [Fact]
    public void A_completion_is_valid_only_as_the_alphabet_continued_then_stopped()
    {
        Assert.Equal("yzab", LengthCorpus.Completion("y:", 4));                                   // wraps after z
        Assert.Equal(4, Corpus.ValidLength("y:", Tokens("yzab"), LengthExperiment.Tokenizer.EndOfSequenceId));
        Assert.Equal(1, Corpus.ValidLength("c:", Tokens("c"), LengthExperiment.Tokenizer.EndOfSequenceId));
        Assert.Null(Corpus.ValidLength("c:", Tokens("cdf"), LengthExperiment.Tokenizer.EndOfSequenceId));            // wrong letter
        Assert.Null(Corpus.ValidLength("c:", Tokens("cde", endOfSequence: false), LengthExperiment.Tokenizer.EndOfSequenceId));   // never stopped
        Assert.Null(Corpus.ValidLength("c:", Tokens(""), LengthExperiment.Tokenizer.EndOfSequenceId));               // empty
        Assert.Equal(20, Corpus.ValidLength("a:", Tokens(LengthCorpus.Completion("a:", 20)), LengthExperiment.Tokenizer.EndOfSequenceId));
        Assert.Null(Corpus.ValidLength("a:", Tokens(LengthCorpus.Completion("a:", 21)), LengthExperiment.Tokenizer.EndOfSequenceId));   // too long
    }

    // ---- the rewards ----------------------------------------------------------------------------------

    [Theory]
    [InlineData(LengthTask.Min, 1, 1.0)]
    [InlineData(LengthTask.Min, 2, 18.0 / 19)]
    [InlineData(LengthTask.Min, 12, 8.0 / 19)]
    [InlineData(LengthTask.Min, 20, 0.0)]
    [InlineData(LengthTask.Skew, 1, 1.0)]
    [InlineData(LengthTask.Skew, 12, 8.0 / 19)]
    [InlineData(LengthTask.Mode, 12, 1.0)]
    [InlineData(LengthTask.Mode, 11, 18.0 / 19)]
    [InlineData(LengthTask.Mode, 15, 16.0 / 19)]
    [InlineData(LengthTask.Mode, 1, 8.0 / 19)]
    [InlineData(LengthTask.Mode, 20, 11.0 / 19)]
    public void Task_rewards_match_hand_computed_values(LengthTask task, int length, double expected) =>
        Assert.Equal(expected, LengthRewards.Reward(task, length, Corpus), 12);

    [Theory]
    [InlineData(LengthTask.Min)]
    [InlineData(LengthTask.Mode)]
    [InlineData(LengthTask.Skew)]
    public void An_invalid_completion_earns_nothing(LengthTask task) => Assert.Equal(0, LengthRewards.Reward(task, null, Corpus));

    [Fact]
    public void Skew_acceptance_keeps_long_samples_and_drops_short_ones()
    {
        Assert.Equal(0.5, LengthRewards.SkewAcceptance(12, Corpus, 2), 12);
        Assert.Equal(1 / (1 + Math.Exp(-1)), LengthRewards.SkewAcceptance(14, Corpus, 2), 12);
        Assert.Equal(1 / (1 + Math.Exp(5.5)), LengthRewards.SkewAcceptance(1, Corpus, 2), 12);   // ≈ 0.004
    }

    // ---- the reference and its exact measurement -----------------------------------------------------

    [Fact]
    public void Evaluate_is_the_exact_probability_of_each_valid_completion()
    {
        // One prompt, so Evaluate's average over prompts is that prompt's distribution; an unfitted policy
        // spreads mass everywhere, which makes every term non-trivial.
        var corpus = new LengthCorpus(maxLength: 6, meanLength: 3, lengthStd: 2, promptLetters: 1);
        using var scope = NewDisposeScope();
        using var policy = PolicyModel.Create(Gpt2Config.Tiny(LengthExperiment.Tokenizer.VocabularySize), seed: 5);
        var evaluation = LengthExperiment.Evaluate(policy, corpus, LengthTask.Mode);
        var rows = Enumerable.Range(1, 6).Select(l => (Prompt: LengthExperiment.Tokenizer.Encode("a:"), Completion: Tokens(LengthCorpus.Completion("a:", l)))).ToList();
        using var batch = SequenceBatch.FromTokens(rows, policy.Config.ContextLength, LengthExperiment.Tokenizer.PaddingId);
        double[] logProbs;
        using (no_grad())
            logProbs = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).Values.to(ScalarType.Float64).data<double>().ToArray();
        for (var l = 1; l <= 6; l++)
            Assert.Equal(Math.Exp(logProbs[l - 1]), evaluation.LengthProbabilities[l], 1e-6);
        Assert.Equal(evaluation.LengthProbabilities.Sum(), evaluation.ValidMass, 12);
        Assert.Equal(Enumerable.Range(1, 6).Sum(l => evaluation.LengthProbabilities[l] * LengthRewards.Reward(LengthTask.Mode, l, corpus)), evaluation.Reward, 12);
        Assert.InRange(evaluation.ValidMass, 1e-12, 0.5);                                         // untrained: mostly invalid
    }

    [Fact]
    public void Sft_fits_a_broad_reference_that_rarely_says_little()
    {
        var fitted = LengthExperiment.Evaluate(fixture.Policy, fixture.Corpus, LengthTask.Min);
        Assert.True(fitted.ValidMass > 0.75, $"valid mass {fitted.ValidMass}");
        Assert.InRange(fitted.MeanLength, fixture.Corpus.ExpectedLength - 1.5, fixture.Corpus.ExpectedLength + 1.5);
        var conditional = fitted.LengthProbabilities.Select(p => p / fitted.ValidMass).ToArray();
        var totalVariation = 0.5 * Enumerable.Range(0, 21).Sum(l => Math.Abs(conditional[l] - fixture.Corpus.LengthProbabilities[l]));
        Assert.True(totalVariation < 0.15, $"TV to the corpus {totalVariation}");
        Assert.True(conditional.Take(4).Sum() < 0.05, $"P(L ≤ 3 | valid) = {conditional.Take(4).Sum()}");     // the min peak is unlikely
        Assert.True(conditional.Skip(6).Take(11).Sum() > 0.6, "most mass lies at lengths 6..16");            // and the mass is broad
    }

    [Fact]
    public void Skew_offline_data_is_skewed_away_from_the_min_length_peak()
    {
        var options = fixture.Options;
        var plain = LengthExperiment.OfflineDataset(options, fixture.Corpus, fixture.Policy, LengthTask.Min, seed: 1);
        var skewed = LengthExperiment.OfflineDataset(options, fixture.Corpus, fixture.Policy, LengthTask.Skew, seed: 1);
        foreach (var dataset in new[] { plain, skewed })
        {
            Assert.Equal(options.Updates, dataset.Count);
            Assert.All(dataset, update => Assert.All(update.GroupBy(r => r.PromptId), g => Assert.Equal(options.SamplesPerPrompt, g.Count())));
            Assert.All(dataset, update => Assert.Equal(options.PromptsPerUpdate * options.SamplesPerPrompt, update.Count));
        }
        int[] Lengths(IReadOnlyList<List<PrefOnline.Learning.TrainingData.Rollout>> dataset) => dataset.SelectMany(u => u)
            .Select(r => fixture.Corpus.ValidLength(r.Prompt, r.CompletionTokens, LengthExperiment.Tokenizer.EndOfSequenceId))
            .Where(l => l is not null).Select(l => l!.Value).ToArray();
        var plainLengths = Lengths(plain);
        var skewedLengths = Lengths(skewed);
        Assert.True(skewedLengths.Average() > plainLengths.Average() + 1.0, $"mean length skewed {skewedLengths.Average():F2} vs plain {plainLengths.Average():F2}");
        double ShortShare(int[] lengths) => lengths.Count(l => l <= 8) / (double)lengths.Length;
        Assert.True(ShortShare(skewedLengths) < 0.5 * ShortShare(plainLengths), $"share of L ≤ 8: skewed {ShortShare(skewedLengths):F3} vs plain {ShortShare(plainLengths):F3}");
        // Same reward: the skew task's offline rewards are the min task's for the same completion.
        Assert.All(skewed.SelectMany(u => u), r => Assert.Equal(
            LengthRewards.Reward(LengthTask.Min, fixture.Corpus.ValidLength(r.Prompt, r.CompletionTokens, LengthExperiment.Tokenizer.EndOfSequenceId), fixture.Corpus), r.Reward));
    }

    // ---- runs -------------------------------------------------------------------------------------------

    /// <summary>The acceptance run: the --quick preset's protocol (seed 1, 120 SFT steps, 20 updates of
    /// 8 prompts × K = 4, T = 2) on the min task for two negative-gradient methods.</summary>
    [Fact]
    public void Quick_run_online_negative_gradient_ends_above_offline_on_min()
    {
        var options = new LengthOptions().Quick() with
        {
            Tasks = [LengthTask.Min],
            Methods = [LengthMethods.Dpo, LengthMethods.Reinforce],
            ReuseSweep = [],
            BatchSweep = [],
        };
        var results = LengthExperiment.Run(options);
        Assert.Equal(4, results.Runs.Count);
        var reference = results.References.Single().Rewards[LengthTask.Min];
        foreach (var method in options.Methods)
        {
            var online = results.Runs.Single(r => r.Method == method && r.Mode == LengthMode.Online);
            var offline = results.Runs.Single(r => r.Method == method && r.Mode == LengthMode.Offline);
            Assert.True(online.Final.Reward > offline.Final.Reward + 0.1, $"{method}: online {online.Final.Reward:F3} vs offline {offline.Final.Reward:F3}");
            Assert.True(online.Final.Reward > reference + 0.2, $"{method}: online {online.Final.Reward:F3} vs reference {reference:F3}");
            Assert.True(online.Final.MeanLength < 5, $"{method}: online mean length {online.Final.MeanLength:F2}");
            // Same start, same budget: both begin at the reference and draw the same number of samples.
            Assert.Equal(reference, online.Curve[0].Reward, 12);
            Assert.Equal(reference, offline.Curve[0].Reward, 12);
            Assert.Equal(options.SampleBudget, online.Samples);
            Assert.Equal(options.SampleBudget, offline.Samples);
            Assert.Equal(options.Updates * options.InnerSteps, online.GradientSteps + online.SkippedSteps);
            Assert.Equal(0, online.SkippedSteps);
        }
    }

    [Fact]
    public void Same_options_give_identical_curves()
    {
        var options = new LengthOptions
        {
            // 40 SFT steps: enough valid completions that rewards differ and every run learns something.
            Seeds = 1, PretrainSteps = 40, Updates = 3, EvaluateEvery = 1, Tasks = [LengthTask.Skew], Methods = [LengthMethods.Ppo, LengthMethods.Ipo],
            ReuseSweep = [], BatchSweep = [],
        };
        var first = LengthExperiment.Run(options);
        var second = LengthExperiment.Run(options);
        Assert.Equal(first.Runs.Select(r => r.Curve), second.Runs.Select(r => r.Curve));
        Assert.Equal(first.References.Select(r => r.Rewards[LengthTask.Skew]), second.References.Select(r => r.Rewards[LengthTask.Skew]));
        Assert.All(first.Runs, r => Assert.NotEqual(r.Curve[0].Reward, r.Final.Reward));        // it trained
    }

    [Fact]
    public void Reports_are_complete_and_well_formed()
    {
        var options = new LengthOptions
        {
            Seeds = 2, PretrainSteps = 5, Updates = 4, EvaluateEvery = 2, Tasks = [LengthTask.Min, LengthTask.Skew], Methods = [LengthMethods.Dpo, LengthMethods.BestOfN],
            ReuseSweep = [1, 2], BatchSweep = [4, 16], SweepMethods = [LengthMethods.Dpo],
        };
        var results = LengthExperiment.Run(options);
        // Grid 2 tasks × 2 methods × 2 modes, plus sweep points not in the grid (T = 1; batch 4 and 16), per seed.
        Assert.Equal(2 * (2 * 2 * 2 + 3), results.Runs.Count);
        var skewOnline = results.Runs.Where(r => r.Task == LengthTask.Skew && r.Mode == LengthMode.Online).ToList();
        Assert.All(skewOnline, r => Assert.Equal(LengthTask.Min, r.SameRunAs));
        // The batch sweep keeps the sample budget (4 updates × 8 prompts): 16 prompts → 2 updates, 4 prompts → 8.
        Assert.All(results.Runs.Where(r => r.PromptsPerUpdate == 16), r => Assert.Equal(2, r.Updates));
        Assert.All(results.Runs.Where(r => r.PromptsPerUpdate == 4), r => Assert.Equal(8, r.Updates));
        Assert.All(results.Runs, r => Assert.Equal(options.SampleBudget, r.Samples));
        var directory = Path.Combine(Path.GetTempPath(), $"length-report-{Guid.NewGuid():N}");
        try
        {
            var files = LengthReport.WriteAll(results, directory);
            Assert.Equal(4, files.Count);

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, LengthReport.ResultsFile)));
            var root = json.RootElement;
            Assert.Equal("length", root.GetProperty("experiment").GetString());
            Assert.Equal(results.Runs.Count, root.GetProperty("runs").GetArrayLength());
            Assert.Equal(results.Summaries.Count, root.GetProperty("summary").GetArrayLength());
            Assert.Equal(2, root.GetProperty("references").GetArrayLength());
            Assert.Equal(1e-4, root.GetProperty("options").GetProperty("learning_rate").GetDouble());
            var run = root.GetProperty("runs")[0];
            Assert.Equal(1 + 4 / 2, run.GetProperty("curve").GetArrayLength());                  // update 0, 2, 4
            Assert.Contains(root.GetProperty("runs").EnumerateArray(), r => r.TryGetProperty("same_run_as", out var same) && same.GetString() == "min");

            var csv = File.ReadAllLines(Path.Combine(directory, LengthReport.CurvesFile));
            Assert.Equal("task,method,mode,seed,inner_steps,prompts_per_update,update,samples,reward,mean_length,valid_mass", csv[0]);
            Assert.Equal(results.Runs.Sum(r => r.Curve.Count) + 1, csv.Length);

            XNamespace ns = "http://www.w3.org/2000/svg";
            var svg = XDocument.Parse(File.ReadAllText(Path.Combine(directory, LengthReport.PlotFile)));
            Assert.Equal(2 * 2 * 2, svg.Descendants(ns + "polyline").Count());                   // tasks × methods × modes
            Assert.Contains(svg.Descendants(ns + "text"), t => t.Value.Contains("best_of_n (offline)", StringComparison.Ordinal));
            var sweeps = XDocument.Parse(File.ReadAllText(Path.Combine(directory, LengthReport.SweepPlotFile)));
            Assert.Equal(2 + 2, sweeps.Descendants(ns + "polyline").Count());                    // T ∈ {1, 2}; batch ∈ {4, 16}

            var table = LengthReport.FormatTable(results);
            foreach (var expected in new[] { "task min", "task skew", "online runs = the min task's", "sample reuse", "batch size", "T=1", "16 prompts (2 upd)", "±" })
                Assert.Contains(expected, table);
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Curve_average_is_the_area_over_samples_drawn()
    {
        var curve = new[] { new LengthCurvePoint(0, 0, 0.2, 10, 1), new LengthCurvePoint(1, 100, 0.4, 8, 1), new LengthCurvePoint(3, 300, 0.8, 4, 1) };
        // (0.2 + 0.4)/2 · 100 + (0.4 + 0.8)/2 · 200 = 30 + 120 = 150 over 300 samples.
        Assert.Equal(0.5, LengthExperiment.CurveAverage(curve), 12);
        Assert.Equal(0.7, LengthExperiment.CurveAverage([new LengthCurvePoint(0, 0, 0.7, 3, 1)]), 12);
    }

    // ---- options ------------------------------------------------------------------------------------

    [Fact]
    public void Bad_options_fail_with_the_field_named()
    {
        static string? Param(LengthOptions o) => Assert.ThrowsAny<ArgumentException>(o.Validate).ParamName;
        var ok = new LengthOptions();
        ok.Validate();
        ok.Quick().Validate();
        Assert.Equal("MaxLength", Param(ok with { MaxLength = 1 }));
        Assert.Equal("MeanLength", Param(ok with { MeanLength = 30 }));
        Assert.Equal("LengthStd", Param(ok with { LengthStd = 0 }));
        Assert.Equal("PromptLetters", Param(ok with { PromptLetters = 27 }));
        Assert.Equal("Tasks", Param(ok with { Tasks = [] }));
        Assert.Equal("Tasks", Param(ok with { Tasks = [LengthTask.Min, LengthTask.Min] }));
        Assert.Equal("Methods", Param(ok with { Methods = ["dpo", "nonsense"] }));
        Assert.Equal("Modes", Param(ok with { Modes = [] }));
        Assert.Equal("Seeds", Param(ok with { Seeds = 0 }));
        Assert.Equal("SamplesPerPrompt", Param(ok with { SamplesPerPrompt = 1 }));
        Assert.Equal("ReuseSweep", Param(ok with { ReuseSweep = [1, 0] }));
        Assert.Equal("BatchSweep", Param(ok with { BatchSweep = [4, 4] }));
        Assert.Equal("BatchSweep", Param(ok with { Updates = 1, PromptsPerUpdate = 2, BatchSweep = [4] }));   // no update fits the budget
        Assert.Equal("SweepMethods", Param(ok with { SweepMethods = ["nope"] }));
        Assert.Equal("LearningRate", Param(ok with { LearningRate = double.NaN }));
        Assert.Equal("PpoClipRange", Param(ok with { PpoClipRange = 1 }));
        Assert.Equal("KlCoefficient", Param(ok with { KlCoefficient = -1 }));
        Assert.Equal("Threads", Param(ok with { Threads = 0 }));
        Assert.Contains("valid methods", Assert.ThrowsAny<ArgumentException>(() => (ok with { Methods = ["nonsense"] }).Validate()).Message);
        Assert.Equal(LengthTask.Skew, LengthTaskNames.Parse("skew"));
        Assert.Throws<ArgumentException>(() => LengthTaskNames.Parse("longest"));
        Assert.Equal(LengthMode.Online, LengthModeNames.Parse("online"));
        Assert.Throws<ArgumentException>(() => LengthModeNames.Parse("sideways"));
    }
}
