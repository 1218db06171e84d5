using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// The NaN/Inf guard: a bad step is skipped and counted, and neither the weights nor the optimizer's
/// state (moments, step counts) move; the learner carries on with the next update.
/// </summary>
public sealed class LearnerGuardTests
{

    private static byte[] OptimizerBytes(Learner learner)
    {
        using var state = learner.ExportState();
        return TensorBytes(state.Tensors);
    }

    [Fact]
    public void A_non_finite_loss_is_skipped_with_weights_and_optimizer_state_untouched()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var learner = new Learner(policy, null, Tokenizer, LearnerTests.Base with
        {
            Objective = ObjectiveNames.Reinforce,
            LearningRate = 1e-3, WeightDecay = 0,
            KlCoefficient = 0,
            InnerSteps = 3,
        });
        // Train once so the optimizer has non-trivial moments to protect.
        learner.Update(LearnerBatch.Of(Rollouts(policy, 2, 2, (_, s, _) => s, seed: 20)));
        var weights = WeightBytes(policy);
        var optimizer = OptimizerBytes(learner);

        // A finite reward so large that its float32 advantage overflows: A·log π = ±∞, the mean is NaN.
        var poisoned = Rollouts(policy, 2, 2, (p, s, _) => p == 0 && s == 0 ? 1e300 : 0.0, seed: 21);
        var update = learner.Update(LearnerBatch.Of(poisoned));

        Assert.False(update.Applied);
        Assert.Equal(LearnerSkipReason.NonFiniteLoss, update.SkipReason);
        Assert.Equal((0, 1), (update.InnerSteps, update.SkippedSteps));       // stopped at the bad step, not tried 3 times
        Assert.Null(update.Loss);
        Assert.Equal(1, learner.UpdateCount);
        Assert.Equal(1, learner.Counters.StepsSkipped);
        Assert.Equal(weights, WeightBytes(policy));
        Assert.Equal(optimizer, OptimizerBytes(learner));

        var healthy = learner.Update(LearnerBatch.Of(Rollouts(policy, 2, 2, (_, s, _) => s, seed: 22)));
        Assert.True(healthy.Applied);
        Assert.Equal(2, learner.UpdateCount);
        Assert.NotEqual(weights, WeightBytes(policy));
    }

    [Fact]
    public void A_NaN_gradient_in_the_second_inner_step_leaves_exactly_the_state_after_the_first()
    {
        using var scope = NewDisposeScope();
        using var guarded = Policy();
        using var oneStep = Policy();
        using var reference = new ReferenceModel(guarded);
        var rollouts = Rollouts(guarded, 3, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 23);
        LearnerOptions Options(int t) => LearnerTests.Base with { LearningRate = 1e-3, WeightDecay = 0, InnerSteps = t, KlCoefficient = 0.1 };
        using var learner = new Learner(guarded, reference, Tokenizer, Options(3));
        using var control = new Learner(oneStep, reference, Tokenizer, Options(1));
        var backwards = 0;
        learner.AfterBackward = parameters =>
        {
            if (++backwards != 2) return;
            using var s = NewDisposeScope();
            parameters[3].grad!.mul_(double.NaN);                        // one gradient poisoned in place
        };

        var update = learner.Update(LearnerBatch.Of(rollouts));
        control.Update(LearnerBatch.Of(rollouts));

        Assert.True(update.Applied);                                           // the first step stands
        Assert.Equal((1, 1), (update.InnerSteps, update.SkippedSteps));
        Assert.Equal(LearnerSkipReason.NonFiniteGradients, update.SkipReason);
        Assert.Equal(2, backwards);                                            // the third step was never attempted
        Assert.Equal(WeightBytes(oneStep), WeightBytes(guarded));
        Assert.Equal(OptimizerBytes(control), OptimizerBytes(learner));
        Assert.Equal(1, learner.Counters.StepsSkipped);
        Assert.All(guarded.parameters(), p => Assert.Null(p.grad));           // no poisoned gradient left behind

        learner.AfterBackward = null;
        Assert.True(learner.Update(LearnerBatch.Of(rollouts)).Applied);
    }

    [Fact]
    public void Gradients_above_the_clip_norm_are_scaled_and_the_norm_before_clipping_is_reported()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        using var learner = new Learner(policy, reference, Tokenizer, LearnerTests.Base with { LearningRate = 1e-3, WeightDecay = 0, MaxGradNorm = 1e-4 });
        var update = learner.Update(LearnerBatch.Of(Rollouts(policy, 3, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 24)));
        var normSeen = update.GradNorm;

        Assert.True(normSeen > 1e-4, $"the unclipped norm {normSeen} should exceed the tiny clip");
        // The clipped gradient has norm 1e-4; AdamW's first moment after one step is (1 − β₁)·g, so it shows g.
        using var state = learner.ExportState();
        double sumSq = 0;
        foreach (var (name, t) in state.Tensors.Where(kv => kv.Key.EndsWith(".exp_avg", StringComparison.Ordinal)))
        {
            using var s = NewDisposeScope();
            sumSq += t.pow(2).sum().ToDouble();
        }
        var clippedNorm = Math.Sqrt(sumSq) / (1 - learner.Options.OptimizerParameters().Beta1);
        Assert.Equal(1e-4, clippedNorm, 1e-6);
    }

    [Fact]
    public void Updates_are_bit_identical_under_the_same_seed_and_differ_under_another()
    {
        byte[] Run(ulong learnerSeed, string objective)
        {
            using var scope = NewDisposeScope();
            using var policy = Policy(seed: 4, dropout: 0.1);                  // dropout makes the seed matter
            using var reference = new ReferenceModel(policy);
            using var learner = new Learner(policy, reference, Tokenizer, LearnerTests.ObjectiveFor(objective) with
            {
                Baseline = AdvantageBaseline.MovingAverage,
                LearningRate = 1e-3, WeightDecay = 0,
                KlCoefficient = 0.1, TargetKl = 0.5, KlHorizon = 100,
                InnerSteps = 2,
                Seed = learnerSeed,
            });
            for (var u = 0; u < 3; u++)
                learner.Update(LearnerBatch.Of(Rollouts(policy, 3, 2, (p, s, _) => p * 0.1 + s, seed: 30 + u, version: learner.UpdateCount)));
            return WeightBytes(policy);
        }

        foreach (var objective in new[] { ObjectiveNames.Dpo, ObjectiveNames.Ppo, ObjectiveNames.Reinforce })
        {
            Assert.Equal(Run(7, objective), Run(7, objective));
            Assert.NotEqual(Run(7, objective), Run(8, objective));
        }
    }

    [Fact]
    public void The_KL_penalty_and_its_adaptive_coefficient_act_on_the_update()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        using var learner = new Learner(policy, reference, Tokenizer, LearnerTests.Base with
        {
            LearningRate = 1e-3, WeightDecay = 0,
            InnerSteps = 3,
            KlMetric = KlEstimator.LowVariance,
            KlCoefficient = 0.2, TargetKl = 1e-6, KlHorizon = 10,   // always above target: c must grow
        });
        var coefficients = new List<double>();
        for (var u = 0; u < 3; u++)
        {
            var update = learner.Update(LearnerBatch.Of(Rollouts(policy, 3, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 40 + u)));
            coefficients.Add(update.KlCoefficient);
            Assert.Equal(update.KlCoefficient, update.Diagnostics[DiagnosticNames.KlCoefficient]);
        }
        Assert.Equal(0.2, coefficients[0]);
        Assert.True(coefficients[1] > coefficients[0] && coefficients[2] > coefficients[1], string.Join(", ", coefficients));
        Assert.Equal(learner.KlCoefficient, coefficients[2] * (1 + 0.2 * 6 / 10.0), 12);   // rows 6, horizon 10, error clipped at +0.2
    }
}
