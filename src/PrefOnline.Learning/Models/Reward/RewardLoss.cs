using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>The reward model's training objectives, each a pure function of reward tensors.</summary>
public static class RewardLoss
{
    /// <summary>
    /// Bradley–Terry negative log-likelihood of the preferences (Bradley &amp; Terry 1952; Ouyang et al.
    /// 2022, eq. 1): −log σ(r_c − r_r), averaged over pairs. With label smoothing ε the label is
    /// trusted with probability 1 − ε (noisy human labels): −(1−ε)·log σ(Δ) − ε·log σ(−Δ).
    /// </summary>
    /// <param name="chosen">(B) rewards of the preferred completions.</param>
    /// <param name="rejected">(B) rewards of the other completions.</param>
    /// <param name="labelSmoothing">ε in [0, 0.5).</param>
    public static Tensor BradleyTerry(Tensor chosen, Tensor rejected, double labelSmoothing = 0)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing < 0.5))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 0.5)");
        SameShape(chosen, rejected);
        using var scope = NewDisposeScope();
        var margin = chosen - rejected;                                            // (B)
        var loss = -(1 - labelSmoothing) * margin.log_sigmoid();
        if (labelSmoothing > 0) loss = loss - labelSmoothing * (-margin).log_sigmoid();
        return loss.mean().MoveToOuterDisposeScope();
    }

    /// <summary>Mean squared error of predicted rewards against scalar ratings: mean((r − y)²).</summary>
    public static Tensor Regression(Tensor predicted, Tensor ratings)
    {
        SameShape(predicted, ratings);
        using var scope = NewDisposeScope();
        return (predicted - ratings).pow(2).mean().MoveToOuterDisposeScope();
    }

    private static void SameShape(Tensor a, Tensor b)
    {
        if (a.dim() != 1 || !a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"expected two (B) reward tensors of one shape, got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}]");
    }
}
