using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.TrainingData;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// The learner's stages on a tiny GPT-2: every objective trains through it and moves log-probs the
/// right way; T inner steps really happen; replayed and fresh rollouts mix; human pairs are trained on.
/// </summary>
public sealed class LearnerTests
{

    public static IEnumerable<object[]> AllObjectives() => ObjectiveNames.All.Select(n => new object[] { n });

    /// <summary>
    /// The settings these tests were written against: one inner step, 16 human pairs, lr 1e-5, a 0.05 KL
    /// penalty measured by k3. The worker's defaults (config/README.md) differ, so they are stated here.
    /// </summary>
    internal static readonly LearnerOptions Base = new()
    {
        InnerSteps = 1,
        HumanPairsPerUpdate = 16,
        LearningRate = 1e-5,
        KlCoefficient = 0.05,
        KlMetric = KlEstimator.LowVariance,
    };

    internal static LearnerOptions ObjectiveFor(string name) => name switch
    {
        ObjectiveNames.ConservativeDpo => Base with { Objective = name, LabelSmoothing = 0.1 },
        // β = 1: with a weaker push-down (0.5 was tried) the pull-up on the better sample generalises to the
        // worse one through the shared weights and outweighs it, so log π(worse) rises (the gap still grows).
        ObjectiveNames.NegativeGradientSft => Base with { Objective = name, NegativeWeight = 1.0 },
        // τ = 0.25: weights e⁴ vs 1, so the better sample clearly dominates the weighted likelihood.
        ObjectiveNames.Rwr => Base with { Objective = name, RwrTemperature = 0.25 },
        _ => Base with { Objective = name },
    };

    private static bool IsMaxLikelihood(string name) => name is ObjectiveNames.Sft or ObjectiveNames.BestOfN or ObjectiveNames.Rwr;

    /// <summary>Mean over prompts of log π(sample 0) − log π(sample 1).</summary>
    private static double Gap(double[] logProbs) => Enumerable.Range(0, logProbs.Length / 2).Average(p => logProbs[2 * p] - logProbs[2 * p + 1]);

    [Theory]
    [MemberData(nameof(AllObjectives))]
    public void One_update_of_every_objective_moves_log_probs_towards_the_better_sample(string name)
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        // 6 prompts × 2 samples; sample 0 of each prompt is the better one.
        var rollouts = Rollouts(policy, prompts: 6, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 11);
        var before = LogProbs(policy, rollouts);
        using var learner = new Learner(policy, reference, Tokenizer, ObjectiveFor(name) with
        {
            LearningRate = 1e-3, WeightDecay = 0,
            KlCoefficient = 0,
            InnerSteps = 2,
        });

        var update = learner.Update(LearnerBatch.Of(rollouts));

        Assert.True(update.Applied, $"{name}: {update.SkipReason}");
        Assert.Equal(2, update.InnerSteps);
        Assert.Equal(1, learner.UpdateCount);
        var after = LogProbs(policy, rollouts);
        Assert.True(Gap(after) > Gap(before) + 1e-3, $"{name}: log π(better) − log π(worse) went {Gap(before):F4} → {Gap(after):F4}");
        var better = (double[] lp) => Enumerable.Range(0, 6).Average(p => lp[2 * p]);
        var worse = (double[] lp) => Enumerable.Range(0, 6).Average(p => lp[2 * p + 1]);
        if (IsMaxLikelihood(name))
            Assert.True(better(after) > better(before), $"{name}: log π(better) went {better(before):F4} → {better(after):F4}");
        else
            Assert.True(worse(after) < worse(before), $"{name} has a negative gradient: log π(worse) went {worse(before):F4} → {worse(after):F4}");
        Assert.NotNull(update.Loss);
        Assert.NotNull(update.GradNorm);
        Assert.NotNull(update.Entropy);
        Assert.NotNull(update.KlToReference);
        Assert.Equal(0.5, update.MeanReward!.Value, 12);
        Assert.Equal(0.5, update.FreshMeanReward!.Value, 12);
        Assert.Equal(12, update.Rollouts);
        Assert.Equal(12, update.FreshRollouts);
        Assert.Equal(0, update.StalenessMax);
    }

    [Theory]
    [InlineData(ObjectiveNames.Dpo)]
    [InlineData(ObjectiveNames.Ppo)]
    public void One_update_on_a_llama_policy_moves_log_probs_towards_the_better_sample(string name)
    {
        using var scope = NewDisposeScope();
        // Qwen3-shaped: grouped-query attention, q/k-norm, untied head; every parameter must receive a gradient.
        var config = new PrefOnline.Learning.Models.LlamaConfig
        {
            Family = "qwen3", VocabularySize = 258, Width = 32, IntermediateSize = 48, Layers = 2, Heads = 4, KeyValueHeadCount = 2,
            ContextLength = 64, TieWordEmbeddings = false,
        };
        using var policy = PrefOnline.Learning.Models.PolicyModel.Create(config, seed: 3);
        using var reference = new ReferenceModel(policy);
        var rollouts = Rollouts(policy, prompts: 6, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 11);
        var before = LogProbs(policy, rollouts);
        var weightsBefore = policy.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        using var learner = new Learner(policy, reference, Tokenizer, ObjectiveFor(name) with { LearningRate = 1e-3, WeightDecay = 0, KlCoefficient = 0, InnerSteps = 2 });

        var update = learner.Update(LearnerBatch.Of(rollouts));

        Assert.True(update.Applied, $"{name}: {update.SkipReason}");
        Assert.Equal(1, learner.UpdateCount);
        var after = LogProbs(policy, rollouts);
        Assert.True(Gap(after) > Gap(before) + 1e-3, $"{name}: log π(better) − log π(worse) went {Gap(before):F4} → {Gap(after):F4}");
        var unchanged = policy.state_dict().Where(p => PrefOnline.Learning.Tests.Models.ModelTestSupport.Same(p.Value, weightsBefore[p.Key])).Select(p => p.Key).ToList();
        Assert.True(unchanged.Count == 0, $"parameters the update did not move: {string.Join(", ", unchanged)}");
        Assert.NotNull(update.KlToReference);
    }

    [Fact]
    public void An_update_takes_T_inner_steps_on_the_same_batch()
    {
        using var scope = NewDisposeScope();
        using var policyOne = Policy();
        using var policyFour = Policy();
        using var reference = new ReferenceModel(policyOne);
        var rollouts = Rollouts(policyOne, prompts: 4, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 12);
        LearnerOptions Options(int t) => Base with { Objective = ObjectiveNames.Dpo, LearningRate = 1e-3, WeightDecay = 0, KlCoefficient = 0.1, InnerSteps = t };
        using var one = new Learner(policyOne, reference, Tokenizer, Options(1));
        using var four = new Learner(policyFour, reference, Tokenizer, Options(4));

        var u1 = one.Update(LearnerBatch.Of(rollouts));
        var u4 = four.Update(LearnerBatch.Of(rollouts));

        Assert.Equal(4, u4.InnerSteps);
        Assert.Equal(4, four.Counters.StepsApplied);
        Assert.Equal(1, four.UpdateCount);                                     // T steps are one update
        using (var state = four.ExportState()) Assert.Equal(4, state.Tensors["optimizer.0.step"].ToInt64());
        Assert.True(u4.Loss < u4.InitialLoss, $"DPO loss over the 4 steps: {u4.InitialLoss} → {u4.Loss}");
        Assert.Equal(u1.InitialLoss!.Value, u4.InitialLoss!.Value, 6);        // same start
        var rowTokens = rollouts.Sum(r => (long)r.PromptTokens.Length + r.CompletionTokens.Length);
        Assert.Equal(4 * rowTokens, u4.TokensProcessed);
        Assert.Equal(rowTokens, u1.TokensProcessed);
        Assert.Equal(rollouts.Sum(r => (long)r.CompletionTokens.Length), u4.CompletionTokens);
        Assert.NotEqual(WeightBytes(policyOne), WeightBytes(policyFour));
    }

    [Fact]
    public void Batches_drawn_from_the_replay_buffer_mix_fresh_and_replayed_rollouts_and_report_their_staleness()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        var buffer = new ReplayBuffer<Rollout>(new ReplayLimits { Capacity = 64, Eviction = EvictionPolicy.Fifo, MaxReuse = 4, MaxStaleness = 8, FreshFraction = 0.5, Seed = 5 });
        using var learner = new Learner(policy, null, Tokenizer, Base with
        {
            // REINFORCE with a running baseline learns from any sample, grouped or not.
            Objective = ObjectiveNames.Reinforce,
            Baseline = AdvantageBaseline.MovingAverage,
            LearningRate = 1e-3, WeightDecay = 0,
            KlCoefficient = 0,
            BatchSize = 8,
        });
        foreach (var r in Rollouts(policy, prompts: 4, k: 2, (p, s, _) => p + s, seed: 13, version: 0)) buffer.Add(r, r.UpdateCount);

        var first = learner.Update(buffer);
        Assert.Equal((8, 8, 0L, 0.0), (first.Rollouts, first.FreshRollouts, first.StalenessMax!.Value, first.StalenessMean!.Value));

        foreach (var r in Rollouts(policy, prompts: 4, k: 2, (p, s, _) => p - s, seed: 14, version: learner.UpdateCount)) buffer.Add(r, r.UpdateCount);
        var second = learner.Update(buffer);

        Assert.True(second.Applied);
        Assert.Equal(8, second.Rollouts);
        Assert.Equal(4, second.FreshRollouts);                                  // FreshFraction 0.5 of 8
        Assert.Equal(1, second.StalenessMax);                                   // the replayed half came from version 0
        Assert.Equal(0.5, second.StalenessMean!.Value, 12);
        Assert.Equal(new ReplayCounters(16, 0, 0, 0, 0, 12, 4), buffer.Counters);
        Assert.Equal(2, learner.UpdateCount);
        Assert.Equal(16, learner.Counters.Rollouts);
        Assert.Equal(16, learner.BaselineState!.Value.Count);                  // the baseline saw every reward once
    }

    [Fact]
    public void Human_pairs_are_trained_on_with_or_without_tokens_and_mix_with_on_policy_pairs()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var pairs = new[]
        {
            HumanPair("h1", "q1:", "yes", "no thanks", withTokens: true),
            HumanPair("h2", "q2:", "short", "a much longer answer", withTokens: false),
            HumanPair("h3", "q3:", "abc", "xyz", withTokens: false),
            HumanPair("h4", "q4:", "hello", "goodbye", withTokens: true),
        };
        var texts = pairs.SelectMany(p => new[] { (p.Prompt, p.Chosen), (p.Prompt, p.Rejected) }).ToList();
        var before = LogProbs(policy, texts);
        var rollouts = Rollouts(policy, prompts: 3, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 15);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0, InnerSteps = 2 });

        var update = learner.Update(LearnerBatch.Of(rollouts, pairs));

        Assert.True(update.Applied);
        Assert.Equal(4, update.HumanPairs);
        Assert.Equal(3 + 4, update.Pairs);                                      // 3 on-policy (best vs worst) + 4 human
        Assert.Equal(6 + 8, update.Rows);
        Assert.Equal(0, update.InvalidItems);
        var after = LogProbs(policy, texts);
        for (var k = 0; k < pairs.Length; k++)
            Assert.True(after[2 * k] - after[2 * k + 1] > before[2 * k] - before[2 * k + 1],
                $"pair {pairs[k].Id}: margin {before[2 * k] - before[2 * k + 1]:F4} → {after[2 * k] - after[2 * k + 1]:F4}");
    }

    [Theory]
    [InlineData(ObjectiveNames.Reinforce)]
    [InlineData(ObjectiveNames.Ppo)]
    [InlineData(ObjectiveNames.Rwr)]
    public void Reward_objectives_learn_from_human_pairs_as_two_sample_groups(string name)
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        var pairs = Enumerable.Range(0, 4).Select(i => HumanPair($"h{i}", $"q{i}:", $"good{i}", $"bad{i}x", withTokens: false)).ToArray();
        var texts = pairs.SelectMany(p => new[] { (p.Prompt, p.Chosen), (p.Prompt, p.Rejected) }).ToList();
        var before = Gap(LogProbs(policy, texts));
        using var learner = new Learner(policy, null, Tokenizer, ObjectiveFor(name) with
        {
            LearningRate = 1e-3, WeightDecay = 0,
            KlCoefficient = 0,
            InnerSteps = 2,
        });

        var update = learner.Update(LearnerBatch.Of([], pairs));

        Assert.True(update.Applied, update.SkipReason.ToString());
        Assert.Equal(8, update.Rows);
        Assert.Null(update.MeanReward);                                         // no rollouts: no on-policy reward
        var after = Gap(LogProbs(policy, texts));
        Assert.True(after > before + 1e-3, $"{name}: chosen − rejected went {before:F4} → {after:F4}");
    }

    [Fact]
    public void Update_from_buffers_draws_the_configured_number_of_human_pairs()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var rollouts = new ReplayBuffer<Rollout>(new ReplayLimits { Capacity = 4096, Eviction = EvictionPolicy.Fifo, MaxReuse = 4, MaxStaleness = 8, FreshFraction = 0.5, Seed = 1 });
        var human = new ReplayBuffer<PreferencePair>(new ReplayLimits { Capacity = 4096, Eviction = EvictionPolicy.Fifo, MaxReuse = 1, MaxStaleness = 8, FreshFraction = 0.5, Seed = 2 });
        for (var i = 0; i < 5; i++) human.Add(HumanPair($"h{i}", "q:", $"c{i}", $"r{i}", withTokens: false), 0);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0, HumanPairsPerUpdate = 3 });

        var first = learner.Update(rollouts, human);
        var second = learner.Update(rollouts, human);
        var third = learner.Update(rollouts, human);

        Assert.Equal((3, 3, 0), (first.HumanPairs, first.Pairs, first.Rollouts));
        Assert.Equal(2, second.HumanPairs);                                     // each pair used once (MaxReuse 1)
        Assert.Equal(LearnerSkipReason.EmptyBatch, third.SkipReason);
        Assert.False(third.Applied);
        Assert.Equal(2, learner.UpdateCount);
        Assert.Equal(1, learner.Counters.EmptyUpdates);
    }

    [Fact]
    public void A_pairwise_objective_with_no_reward_differences_has_nothing_to_learn()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var before = WeightBytes(policy);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0 });

        var update = learner.Update(LearnerBatch.Of(Rollouts(policy, 3, 2, (_, _, _) => 0.7, seed: 16)));

        Assert.Equal(LearnerSkipReason.EmptyBatch, update.SkipReason);
        Assert.Equal((0, 0, 6), (update.Rows, update.Pairs, update.Rollouts));
        Assert.Equal(0, learner.UpdateCount);
        Assert.Equal(before, WeightBytes(policy));
    }

    [Fact]
    public void Unusable_items_are_dropped_and_counted_and_the_rest_still_trains()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var rollouts = Rollouts(policy, 2, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 17);
        var outOfVocabulary = rollouts[0] with { Id = "bad-token", PromptId = "other", CompletionTokens = [999, 256], BehaviourLogProbs = [-1f, -1f] };
        var mismatched = rollouts[1] with { Id = "bad-logprobs", PromptId = "other", BehaviourLogProbs = [-1f] };
        var samePair = HumanPair("same", "q:", "x", "x", withTokens: false);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0 });

        var update = learner.Update(LearnerBatch.Of([.. rollouts, outOfVocabulary, mismatched], [samePair]));

        Assert.True(update.Applied);
        Assert.Equal(3, update.InvalidItems);
        Assert.Equal(4, update.Rollouts);
        Assert.Equal(2, update.Pairs);
        Assert.Equal(3, learner.Counters.InvalidItems);
    }

    [Fact]
    public void The_update_maps_to_the_guardrail_report()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0 });
        var update = learner.Update(LearnerBatch.Of(Rollouts(policy, 3, 2, (p, s, _) => p + (s == 0 ? 1.0 : 0.0), seed: 18)));

        var report = update.ToReport();

        Assert.Equal(update.UpdateCount, report.PolicyVersion);
        Assert.Equal(update.Loss, report.Loss);
        Assert.Equal(update.GradNorm, report.GradNorm);
        Assert.Equal(update.KlToReference, report.KlToReference);
        Assert.Equal(update.Entropy, report.Entropy);
        Assert.Equal(1.5, report.MeanReward!.Value, 12);
        Assert.True(update.Entropy > 0 && update.Entropy < Math.Log(258) + 1e-6, $"entropy {update.Entropy}");
        Assert.Equal(update.Diagnostics[DiagnosticNames.Loss], update.Loss);
    }

    [Fact]
    public void The_KL_to_reference_is_that_of_the_weights_the_update_leaves_behind()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var rollouts = Rollouts(policy, 4, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 19);
        using var learner = new Learner(policy, reference, Tokenizer, Base with { LearningRate = 1e-3, WeightDecay = 0, KlMetric = KlEstimator.FullVocabulary, InnerSteps = 1 });

        var update = learner.Update(LearnerBatch.Of(rollouts));

        // One step was taken from π = π_ref: the version the guardrail judges has moved, so its KL is positive
        // (the step's own forward saw π_ref and would have reported 0), and it equals a fresh measurement.
        Assert.True(update.KlToReference > 1e-6, $"KL after one step {update.KlToReference}");
        var sequences = SequenceBatch.FromTokens(rollouts.Select(r => (r.PromptTokens.ToArray(), r.CompletionTokens.ToArray())).ToList(), policy.Config.ContextLength, Tokenizer.PaddingId);
        policy.eval();
        using (no_grad())
        {
            var now = SequenceLogProbs.Compute(policy, sequences, LogProbReduction.Sum, keepDistributions: true);
            var then = reference.Compute(sequences, LogProbReduction.Sum, keepDistributions: true);
            Assert.Equal(PolicyDivergence.TokenKl(now, then, KlEstimator.FullVocabulary).sum(1).mean().ToDouble(), update.KlToReference!.Value, 5);
        }
    }

    [Fact]
    public void Construction_checks_that_the_objective_and_penalty_have_a_reference()
    {
        using var policy = Policy();
        Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer, Base));
        Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer,
            Base with { Objective = ObjectiveNames.Reinforce, KlCoefficient = 0.1 }));
        Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer,
            Base with { Objective = ObjectiveNames.Reinforce, KlCoefficient = 0, InnerSteps = 0 }));
        Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer,
            Base with { Objective = "dpoo" }));
    }
}
