using PrefOnline.Learning.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Objectives;

/// <summary>
/// The "sign test": one gradient step of a negative-gradient objective on a tiny differentiable policy
/// raises log π of the chosen response and lowers log π of the rejected one; PPO's clip cuts the
/// gradient exactly where the paper says it should.
/// </summary>
public sealed class GradientDirectionTests
{
    public static IEnumerable<object[]> NegativeGradientObjectives() =>
    [
        [new ObjectiveOptions { Name = ObjectiveNames.Dpo, Beta = 0.1 }],
        [new ObjectiveOptions { Name = ObjectiveNames.ConservativeDpo, Beta = 0.1, LabelSmoothing = 0.1 }],
        [new ObjectiveOptions { Name = ObjectiveNames.Ipo, Beta = 0.1 }],
        [new ObjectiveOptions { Name = ObjectiveNames.NegativeGradientSft, NegativeWeight = 0.5 }],
    ];

    /// <summary>A two-token "language model": an independent softmax over 6 tokens at each position,
    /// log π(y) = Σ_t log softmax(θ_t)[y_t]. Chosen = (1, 2), rejected = (4, 5).</summary>
    [Theory]
    [MemberData(nameof(NegativeGradientObjectives))]
    public void One_step_raises_chosen_and_lowers_rejected(ObjectiveOptions options)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var theta = randn([2, 6], generator: generator, dtype: ScalarType.Float64).DetachFromDisposeScope();
        theta.requires_grad = true;
        try
        {
            var sequences = tensor(new long[] { 1, 2, 4, 5 }, [2, 2]);          // rows: chosen, rejected; columns: positions
            Tensor LogProbs()
            {
                var logp = theta.log_softmax(1);                                           // (positions, vocab)
                return logp.unsqueeze(0).expand(2, 2, 6).gather(2, sequences.unsqueeze(2)).squeeze(2).sum(1);   // (2,)
            }

            double[] before;
            Tensor referenceLogProbs;
            using (no_grad())
            {
                referenceLogProbs = LogProbs();
                before = referenceLogProbs.data<double>().ToArray();
            }
            // Start away from the reference so ℓ ≠ 0 and IPO's target is not already met in a trivial way.
            var result = new TrainingObjective(options).Compute(new ObjectiveInputs
            {
                PolicyLogProbs = LogProbs(),
                ReferenceLogProbs = referenceLogProbs,
                Pairs = tensor(new long[] { 0, 1 }, [1, 2]),
            });
            result.Loss.backward();
            using (no_grad()) theta.copy_(theta.detach() - theta.grad!.mul(0.5));                        // plain SGD step

            double[] after;
            using (no_grad()) after = LogProbs().data<double>().ToArray();
            Assert.True(after[0] > before[0], $"{options.Name}: log π(chosen) went {before[0]:F4} → {after[0]:F4}");
            Assert.True(after[1] < before[1], $"{options.Name}: log π(rejected) went {before[1]:F4} → {after[1]:F4}");
        }
        finally
        {
            theta.Dispose();
        }
    }

    [Fact]
    public void Max_likelihood_has_no_gradient_on_the_rejected_response()
    {
        // The contrast that defines "negative gradient": SFT/Best-of-N never look at the rejected sample.
        using var scope = NewDisposeScope();
        var policy = tensor(new[] { -1.0, -2.0 });
        policy.requires_grad = true;
        var result = new TrainingObjective(new() { Name = ObjectiveNames.BestOfN })
            .Compute(new() { PolicyLogProbs = policy, Pairs = tensor(new long[] { 0, 1 }, [1, 2]) });
        result.Loss.backward();
        Assert.Equal(new[] { -1.0, 0.0 }, policy.grad!.data<double>().ToArray());
    }

    [Fact]
    public void Ppo_clip_zeroes_the_gradient_exactly_beyond_epsilon_in_the_improving_direction()
    {
        using var scope = NewDisposeScope();
        // ε = 0.2, behaviour log-prob 0 everywhere so ρ = e^{log π}.
        double[] ratios = [1.5, 0.5, 0.5, 1.5, 1.1, 0.9];
        double[] advantages = [1, 1, -1, -1, 1, -1];
        var policy = tensor(ratios.Select(r => Math.Log(r)).ToArray());
        policy.requires_grad = true;
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Ppo, PpoClipRange = 0.2 }).Compute(new()
        {
            PolicyLogProbs = policy,
            BehaviourLogProbs = zeros([6], ScalarType.Float64),
            Advantages = tensor(advantages),
        });
        result.Loss.backward();
        var grad = policy.grad!.data<double>().ToArray();
        const double n = 6;
        Assert.Equal(0.0, grad[0]);                        // A > 0, ρ > 1 + ε: already improved enough, clipped
        Assert.Equal(-1 * 0.5 / n, grad[1], 14);           // A > 0, ρ < 1 − ε: still worse, the gradient flows (−A·ρ/n)
        Assert.Equal(0.0, grad[2]);                        // A < 0, ρ < 1 − ε: already pushed down enough, clipped
        Assert.Equal(1 * 1.5 / n, grad[3], 14);            // A < 0, ρ > 1 + ε: flows
        Assert.Equal(-1 * 1.1 / n, grad[4], 14);           // inside the trust region: flows
        Assert.Equal(0.9 / n, grad[5], 14);
        Assert.Equal(2.0 / 6.0, result.Diagnostics[DiagnosticNames.ClipFraction], 14);
    }

    [Fact]
    public void Ppo_clips_token_by_token()
    {
        using var scope = NewDisposeScope();
        // One sequence, A = 1, three tokens with ratios 1.5 (clipped), 1.0, 0.7 (flows), the last masked out.
        var tokens = tensor(new[] { Math.Log(1.5), 0.0, Math.Log(0.7), Math.Log(3.0) }, [1, 4]);
        tokens.requires_grad = true;
        var mask = tensor(new[] { 1.0, 1.0, 1.0, 0.0 }, [1, 4]);
        var behaviour = zeros([1, 4], ScalarType.Float64);
        var result = new TrainingObjective(new() { Name = ObjectiveNames.Ppo, PpoClipRange = 0.2 }).Compute(new()
        {
            PolicyLogProbs = (tokens * mask).sum(1),
            BehaviourLogProbs = (behaviour * mask).sum(1),
            Advantages = tensor(new[] { 1.0 }),
            Tokens = new TokenLogProbs { Policy = tokens, Behaviour = behaviour, Mask = mask },
        });
        result.Loss.backward();
        var grad = tokens.grad!.data<double>().ToArray();
        Assert.Equal(0.0, grad[0]);
        Assert.Equal(-1.0, grad[1], 14);
        Assert.Equal(-0.7, grad[2], 14);
        Assert.Equal(0.0, grad[3]);
        Assert.Equal(-(1.2 + 1.0 + 0.7), result.Loss.ToDouble(), 14);   // Σ over tokens, mean over the one sequence
        Assert.Equal(1.0 / 3.0, result.Diagnostics[DiagnosticNames.ClipFraction], 14);
    }
}
