using PrefOnline.Learning.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Objectives;

/// <summary>Each loss on inputs small enough to work out by hand; the arithmetic is in the comments.</summary>
public sealed class HandComputedLossTests
{
    private static Tensor V(params double[] values) => tensor(values);

    private static Tensor Pairs(params (long Chosen, long Rejected)[] pairs) =>
        tensor(pairs.SelectMany(p => new[] { p.Chosen, p.Rejected }).ToArray(), [pairs.Length, 2]);

    private static double Loss(ObjectiveOptions options, ObjectiveInputs inputs, double kl = 0) =>
        new TrainingObjective(options).Compute(inputs, kl).Loss.ToDouble();

    [Fact]
    public void Sft_is_mean_negative_log_likelihood()
    {
        using var scope = NewDisposeScope();
        // −mean(−1, −3) = 2; with pairs (1,0),(1,2) the targets are rows 1 and 1: −mean(−3, −3) = 3.
        Assert.Equal(2.0, Loss(new() { Name = ObjectiveNames.Sft }, new() { PolicyLogProbs = V(-1, -3) }), 12);
        Assert.Equal(3.0, Loss(new() { Name = ObjectiveNames.Sft }, new() { PolicyLogProbs = V(-1, -3, -5), Pairs = Pairs((1, 0), (1, 2)) }), 12);
    }

    [Fact]
    public void Rwr_weights_are_exponentiated_rewards_clipped()
    {
        using var scope = NewDisposeScope();
        // τ = 1, w_max = 5: r = (0, ln 2, 10) → w = (1, 2, 5 [clipped from e^10]);
        // loss = −mean(1·(−1), 2·(−2), 5·(−1)) = (1 + 4 + 5)/3 = 10/3.
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Rwr, RwrTemperature = 1, RwrMaxWeight = 5 })
            .Compute(new() { PolicyLogProbs = V(-1, -2, -1), Rewards = V(0, Math.Log(2), 10) });
        Assert.Equal(10.0 / 3.0, result.Loss.ToDouble(), 12);
        Assert.Equal(8.0 / 3.0, result.Diagnostics[DiagnosticNames.RwrWeightMean], 12);
        Assert.Equal(1.0 / 3.0, result.Diagnostics[DiagnosticNames.RwrClippedFraction], 12);
    }

    [Fact]
    public void Negative_gradient_sft_adds_beta_times_rejected_log_prob()
    {
        using var scope = NewDisposeScope();
        // pair (0, 1): −(−1) + 0.5·(−4) = 1 − 2 = −1.
        Assert.Equal(-1.0, Loss(new() { Name = ObjectiveNames.NegativeGradientSft, NegativeWeight = 0.5 },
            new() { PolicyLogProbs = V(-1, -4), Pairs = Pairs((0, 1)) }), 12);
    }

    [Fact]
    public void Reinforce_is_minus_advantage_weighted_log_prob()
    {
        using var scope = NewDisposeScope();
        // −mean(1·(−1), (−1)·(−2)) = −mean(−1, 2) = −0.5.
        Assert.Equal(-0.5, Loss(new() { Name = ObjectiveNames.Reinforce }, new() { PolicyLogProbs = V(-1, -2), Advantages = V(1, -1) }), 12);
    }

    [Fact]
    public void Ppo_takes_the_pessimistic_branch()
    {
        using var scope = NewDisposeScope();
        // ε = 0.2. Sample 0: ρ = e^{ln 1.5} = 1.5, A = 2 → max(−3, −2·1.2 = −2.4) = −2.4 (clipped).
        // Sample 1: ρ = 0.5, A = 2 → max(−1, −1.6) = −1 (unclipped). Mean = −1.7.
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Ppo, PpoClipRange = 0.2 }).Compute(new()
        {
            PolicyLogProbs = V(Math.Log(1.5) - 1, Math.Log(0.5) - 1),
            BehaviourLogProbs = V(-1, -1),
            Advantages = V(2, 2),
        });
        Assert.Equal(-1.7, result.Loss.ToDouble(), 12);
        Assert.Equal(0.5, result.Diagnostics[DiagnosticNames.ClipFraction], 12);
        // approx KL: (1.5 − 1 − ln 1.5) and (0.5 − 1 − ln 0.5), averaged.
        Assert.Equal(((0.5 - Math.Log(1.5)) + (-0.5 - Math.Log(0.5))) / 2, result.Diagnostics[DiagnosticNames.ApproxKl], 12);
    }

    [Fact]
    public void Dpo_family_at_a_known_margin()
    {
        using var scope = NewDisposeScope();
        // Pair (0, 1): ℓ = (−1 − (−2)) − (−3 − (−1)) = 1 − (−2) = 3.
        var inputs = new ObjectiveInputs { PolicyLogProbs = V(-1, -3), ReferenceLogProbs = V(-2, -1), Pairs = Pairs((0, 1)) };
        // DPO, β = 0.5: −log σ(1.5) = log(1 + e^{−1.5}).
        Assert.Equal(Math.Log(1 + Math.Exp(-1.5)), Loss(new() { Name = ObjectiveNames.Dpo, Beta = 0.5 }, inputs), 12);
        // cDPO, β = 0.5, ε = 0.25: 0.75·log(1 + e^{−1.5}) + 0.25·log(1 + e^{1.5}).
        Assert.Equal(0.75 * Math.Log(1 + Math.Exp(-1.5)) + 0.25 * Math.Log(1 + Math.Exp(1.5)),
            Loss(new() { Name = ObjectiveNames.ConservativeDpo, Beta = 0.5, LabelSmoothing = 0.25 }, inputs), 12);
        // IPO, β = 0.25: target margin 1/(2β) = 2, (3 − 2)² = 1.
        Assert.Equal(1.0, Loss(new() { Name = ObjectiveNames.Ipo, Beta = 0.25 }, inputs), 12);

        var dpo = new TrainingObjective(new() { Name = ObjectiveNames.Dpo, Beta = 0.5 }).Compute(inputs);
        Assert.Equal(0.5, dpo.Diagnostics[DiagnosticNames.RewardChosen], 12);      // 0.5·(−1 + 2)
        Assert.Equal(-1.0, dpo.Diagnostics[DiagnosticNames.RewardRejected], 12);   // 0.5·(−3 + 1)
        Assert.Equal(1.5, dpo.Diagnostics[DiagnosticNames.RewardMargin], 12);
        Assert.Equal(1.0, dpo.Diagnostics[DiagnosticNames.RewardAccuracy], 12);
        Assert.Equal(3.0, dpo.Diagnostics[DiagnosticNames.LogRatioMargin], 12);
        Assert.Equal(1.0, dpo.Diagnostics[DiagnosticNames.Pairs], 12);
    }

    [Fact]
    public void Dpo_at_zero_margin_is_log_two()
    {
        using var scope = NewDisposeScope();
        var inputs = new ObjectiveInputs { PolicyLogProbs = V(-1, -1), ReferenceLogProbs = V(-1, -1), Pairs = Pairs((0, 1)) };
        Assert.Equal(Math.Log(2), Loss(new() { Name = ObjectiveNames.Dpo, Beta = 3 }, inputs), 12);
    }

    [Theory]
    [InlineData(KlEstimator.LogRatio, 0.5)]                                    // d = 0.5
    [InlineData(KlEstimator.Squared, 0.125)]                                  // ½·0.5²
    [InlineData(KlEstimator.LowVariance, 0.10653065971263342)]                    // e^{−0.5} − 1 + 0.5
    public void Kl_penalty_estimators(KlEstimator estimator, double perSequence)
    {
        using var scope = NewDisposeScope();
        // SFT on one sequence with log π = −1, log π_ref = −1.5: objective 1, penalty c·k(0.5), c = 2.
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Sft, KlEstimator = estimator })
            .Compute(new() { PolicyLogProbs = V(-1), ReferenceLogProbs = V(-1.5) }, klCoefficient: 2);
        Assert.Equal(1 + 2 * perSequence, result.Loss.ToDouble(), 12);
        Assert.Equal(perSequence, result.Diagnostics[DiagnosticNames.KlPenalty], 12);
        Assert.Equal(1.0, result.Diagnostics[DiagnosticNames.ObjectiveLoss], 12);
        Assert.Equal(0.5, result.Diagnostics[DiagnosticNames.KlToReference], 12);
    }

    [Fact]
    public void No_pairs_gives_an_exact_zero_that_still_backpropagates()
    {
        using var scope = NewDisposeScope();
        var policy = V(-1, -2);
        policy.requires_grad = true;
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Dpo }).Compute(new()
        {
            PolicyLogProbs = policy,
            ReferenceLogProbs = V(-1, -2),
            Pairs = zeros([0, 2], ScalarType.Int64),
        });
        Assert.Equal(0.0, result.Loss.ToDouble());
        result.Loss.backward();
        Assert.Equal(new double[] { 0, 0 }, policy.grad!.data<double>().ToArray());
        Assert.Equal(0.0, result.Diagnostics[DiagnosticNames.Pairs]);
    }
}
