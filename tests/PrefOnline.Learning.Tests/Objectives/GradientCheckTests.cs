using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Objectives;
using TorchSharp;
using static PrefOnline.Learning.Tests.Support.GradCheck;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Objectives;

/// <summary>
/// Every function of ours that a gradient flows through, checked in float64 with TorchSharp's
/// autograd against central finite differences: the losses, the KL penalty, the reward losses, the
/// log-prob reductions and divergences, GPT-2's Conv1D and the seeded dropout. (libtorch's own ops are
/// libtorch's to test.) Inputs stay away from the kinks of non-smooth pieces (PPO's clip bounds, the
/// RWR weight cap). Constants (rewards, advantages, masks, behaviour log-probs) are made inside the
/// function, so only the trained inputs are differentiated.
/// </summary>
public sealed class GradientCheckTests
{
    private static Input R(int seed, params long[] shape) => Input.Random(seed, shape);

    private static Tensor Doubles(params double[] values) => tensor(values);

    private static Tensor Mask(long rows, long columns, params double[] values) => tensor(values, [rows, columns]);

    /// <summary>(2, 3) reference log-probs: constants (the penalty detaches them; only the policy is trained).</summary>
    private static Tensor Reference(int seed)
    {
        var input = R(seed, 2, 3);
        return tensor(input.Values, input.Dimensions);
    }

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    private static readonly Dictionary<string, Action> Cases = new()
    {
        ["log_ratio_margin"] = () => Check("LogRatioMargin", x => Losses.LogRatioMargin(x[0], x[1], x[2], x[3]), R(1, 4), R(2, 4), R(3, 4), R(4, 4)),
        ["sft"] = () => Check("Sft", x => Losses.Sft(x[0]), R(5, 5)),
        ["rwr"] = () => Check("Rwr (one weight capped)", x => Losses.Rwr(x[0], Doubles(0.5, -1, 3, 0.2), 1.0, 10.0), R(6, 4)),
        ["negative_gradient_sft"] = () => Check("NegativeGradientSft", x => Losses.NegativeGradientSft(x[0], x[1], 0.5), R(7, 3), R(8, 3)),
        ["reinforce"] = () => Check("Reinforce", x => Losses.Reinforce(x[0], Doubles(1.5, -0.5, 0.25)), R(9, 3)),
        ["ppo_clip"] = () => Check("PpoClip (ratios inside and outside the clip range)",
            x => Losses.PpoClip(x[0], tensor(new[] { -1.0, -2.0, -0.5, -1.2, -0.3, -2.5 }, [2, 3]), Mask(2, 3, 1, 1, 0, 1, 1, 1), Doubles(1.0, -0.7), 0.2),
            Input.Of([2, 3], -0.9, -2.6, -0.5, -1.15, -0.1, -2.0)),
        ["dpo"] = () => Check("Dpo", x => Losses.Dpo(x[0], 0.3), R(10, 5)),
        ["cdpo"] = () => Check("ConservativeDpo", x => Losses.ConservativeDpo(x[0], 0.3, 0.1), R(11, 5)),
        ["ipo"] = () => Check("Ipo", x => Losses.Ipo(x[0], 0.5), R(12, 5)),
        ["kl_penalty_k1"] = () => Check("KlPenalty k1", x => KlPenalty.PerSequence(x[0], Reference(14), Mask(2, 3, 1, 1, 0, 1, 1, 1), KlEstimator.LogRatio), R(13, 2, 3)),
        ["kl_penalty_k2"] = () => Check("KlPenalty k2", x => KlPenalty.PerSequence(x[0], Reference(16), Mask(2, 3, 1, 1, 0, 1, 1, 1), KlEstimator.Squared), R(15, 2, 3)),
        ["kl_penalty_k3"] = () => Check("KlPenalty k3", x => KlPenalty.PerSequence(x[0], Reference(18), Mask(2, 3, 1, 1, 0, 1, 1, 1), KlEstimator.LowVariance), R(17, 2, 3)),
        ["bradley_terry"] = () => Check("BradleyTerry", x => RewardLoss.BradleyTerry(x[0], x[1]), R(19, 4), R(20, 4)),
        ["bradley_terry_smoothed"] = () => Check("BradleyTerry, label smoothing", x => RewardLoss.BradleyTerry(x[0], x[1], 0.1), R(21, 4), R(22, 4)),
        ["reward_regression"] = () => Check("Regression", x => RewardLoss.Regression(x[0], Doubles(1, -2, 0.5)), R(23, 3)),
        ["reduce_sum"] = () => Check("SequenceLogProbs.Reduce sum", x => SequenceLogProbs.Reduce(x[0], Mask(2, 3, 1, 1, 0, 1, 0, 0), LogProbReduction.Sum), R(24, 2, 3)),
        ["reduce_mean"] = () => Check("SequenceLogProbs.Reduce mean (a row without tokens)",
            x => SequenceLogProbs.Reduce(x[0], Mask(3, 3, 1, 1, 0, 1, 0, 0, 0, 0, 0), LogProbReduction.Mean), R(25, 3, 3)),
        ["token_kl_log_ratio"] = () => Check("PolicyDivergence.TokenKl k1", x => PolicyDivergence.TokenKl(LogProbs(x[0]), LogProbs(x[1]), KlEstimator.LogRatio), R(26, 2, 3, 5), R(27, 2, 3, 5)),
        ["token_kl_low_variance"] = () => Check("PolicyDivergence.TokenKl k3", x => PolicyDivergence.TokenKl(LogProbs(x[0]), LogProbs(x[1]), KlEstimator.LowVariance), R(28, 2, 3, 5), R(29, 2, 3, 5)),
        ["token_kl_full"] = () => Check("PolicyDivergence.TokenKl full vocabulary", x => PolicyDivergence.TokenKl(LogProbs(x[0]), LogProbs(x[1]), KlEstimator.FullVocabulary), R(30, 2, 3, 5), R(31, 2, 3, 5)),
        ["entropy"] = () => Check("PolicyDivergence.Entropy", x => PolicyDivergence.Entropy(LogProbs(x[0])), R(32, 2, 3, 5)),
        ["mean_over_tokens"] = () => Check("PolicyDivergence.MeanOverTokens", x => PolicyDivergence.MeanOverTokens(x[0], Mask(2, 3, 1, 1, 0, 1, 0, 0)), R(33, 2, 3)),
        ["conv1d"] = () =>
        {
            using var layer = Conv1DFloat64();
            Check("Conv1D (bias + x @ W, Hugging Face layout)", x => layer.forward(x[0]), R(34, 2, 3, 4));
        },
        ["seeded_dropout"] = () => Check("SeededDropout (the same mask every evaluation: same seed)", x =>
        {
            using var dropout = new SeededDropout(seed: 9);
            return dropout.Apply(x[0], 0.3, training: true);
        }, R(37, 3, 4)),
    };

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Gradient_matches_finite_differences(string name) => Cases[name]();

    [Fact]
    public void The_gradient_check_itself_catches_a_wrong_gradient()
    {
        // x·detach(x) has derivative x by autograd, 2x in truth: the check must fail.
        var e = Assert.Throws<Xunit.Sdk.XunitException>(() => Check("wrong on purpose", x => x[0] * x[0].detach(), R(40, 3)));
        Assert.Contains("by finite differences", e.Message);
    }

    /// <summary>Per-token log-probs of sequences (B, T) over a vocabulary of V from raw logits (B, T, V):
    /// tokens 0..T−1 mod V, every position real but the last of row 0.</summary>
    private static SequenceLogProbs LogProbs(Tensor logits)
    {
        var (b, t, v) = (logits.size(0), logits.size(1), logits.size(2));
        var distributions = logits.log_softmax(-1);                                          // (B, T, V)
        var tokens = arange(t, dtype: ScalarType.Int64).remainder(v).unsqueeze(0).expand(b, t); // (B, T)
        var mask = ones(b, t, ScalarType.Float64);
        mask[0, t - 1] = tensor(0.0);
        var picked = distributions.gather(2, tokens.unsqueeze(-1)).squeeze(-1) * mask;       // (B, T)
        return new SequenceLogProbs(picked, mask, SequenceLogProbs.Reduce(picked, mask, LogProbReduction.Sum), LogProbReduction.Sum, distributions);
    }

    private static Conv1D Conv1DFloat64()
    {
        using var generator = new Generator(3);
        var layer = new Conv1D(4, 5, initStd: 0.5, generator);
        layer.to(ScalarType.Float64);
        using (no_grad()) layer.Bias.normal_(0, 0.5, generator);
        return layer;
    }

    [Fact]
    public void Conv1D_parameter_gradients_are_the_closed_form()
    {
        using var scope = NewDisposeScope();
        using var layer = Conv1DFloat64();
        var x = randn([2, 3, 4], dtype: ScalarType.Float64);
        var upstream = randn([2, 3, 5], dtype: ScalarType.Float64);
        (layer.forward(x) * upstream).sum().backward();
        var flatX = x.reshape(6, 4);
        var flatG = upstream.reshape(6, 5);
        Assert.Equal(ScalarType.Float64, layer.Weight.dtype);
        var weightError = (layer.Weight.grad! - flatX.t().mm(flatG)).abs().max().ToDouble();     // dL/dW = Xᵀ G, [in, out]
        var biasError = (layer.Bias.grad! - flatG.sum(dim: 0)).abs().max().ToDouble();                // dL/db = Σ G
        Assert.True(weightError < 1e-12 && biasError < 1e-12, $"weight gradient off by {weightError}, bias gradient by {biasError}");
    }
}
