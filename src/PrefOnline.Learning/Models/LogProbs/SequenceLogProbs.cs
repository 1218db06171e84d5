using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>
/// Log-probabilities of a <see cref="SequenceBatch"/>'s completions under a model. The tensors are
/// fresh results in the caller's <see cref="DisposeScope"/>; they carry the autograd graph when
/// computed with gradient (the ambient grad mode; <see cref="ReferenceModel"/> always computes
/// without).
/// </summary>
/// <param name="TokenLogProbs">(B, Tc) float32: log π(yⱼ | x, y&lt;ⱼ) per completion token, 0 under padding.</param>
/// <param name="Mask">(B, Tc) float32: 1 for a real completion token (the batch's completion mask).</param>
/// <param name="Values">(B) float32: the per-sequence values, reduced as <paramref name="Reduction"/> says.</param>
/// <param name="Reduction">How <paramref name="Values"/> was reduced.</param>
/// <param name="LogDistributions">(B, Tc, V) float32 log-softmax at every completion position, only when
/// requested (full-vocabulary KL, entropy); V-wide, so large for big vocabularies.</param>
public sealed record SequenceLogProbs(Tensor TokenLogProbs, Tensor Mask, Tensor Values, LogProbReduction Reduction, Tensor? LogDistributions)
{
    /// <summary>
    /// The one helper every objective uses for sequence log-probs: one forward of
    /// <paramref name="model"/> over the batch, the LM head applied only at the positions that predict
    /// completion tokens, then the log-prob of each completion token.
    /// </summary>
    /// <param name="keepDistributions">Also return the (B, Tc, V) log-distributions (for
    /// <see cref="PolicyDivergence.FullKl"/> and <see cref="PolicyDivergence.Entropy"/>).</param>
    public static SequenceLogProbs Compute(PolicyModel model, SequenceBatch batch, LogProbReduction reduction, bool keepDistributions = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.MaxTokenId >= model.Config.VocabularySize)
            throw new ArgumentException($"token id {batch.MaxTokenId} is outside the model's vocabulary of {model.Config.VocabularySize}");
        using var scope = NewDisposeScope();
        var device = model.TokenEmbedding.device;
        var hidden = model.Hidden(batch.Tokens.to(device));                        // (B, T, C)
        // Right padding needs no attention mask: causality already hides the padding after each row.
        var (b, tc, c) = (hidden.size(0), batch.PredictorPositions.size(1), hidden.size(2));
        var index = batch.PredictorPositions.to(device).unsqueeze(-1).expand(b, tc, c); // (B, Tc, C)
        var predictors = hidden.gather(1, index);                                  // (B, Tc, C)
        // Log-probs in float32 whatever the model's dtype (bfloat16 logits lose too much in a log-softmax).
        var logDistributions = model.Logits(predictors).to(ScalarType.Float32).log_softmax(-1); // (B, Tc, V)
        var picked = logDistributions.gather(2, batch.CompletionTokens.to(device).unsqueeze(-1)).squeeze(-1); // (B, Tc)
        var mask = batch.CompletionMask.to(device);                                // (B, Tc)
        var tokenLogProbs = picked * mask;                                         // (B, Tc)
        var values = Reduce(tokenLogProbs, mask, reduction);                       // (B)
        var kept = keepDistributions ? logDistributions.MoveToOuterDisposeScope() : null;
        return new SequenceLogProbs(tokenLogProbs.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), values.MoveToOuterDisposeScope(), reduction, kept);
    }

    /// <summary>Per-token values (B, Tc) → per-sequence (B) under a mask: the sum over real tokens, or
    /// their mean (0 for a row without tokens).</summary>
    public static Tensor Reduce(Tensor perToken, Tensor mask, LogProbReduction reduction)
    {
        using var scope = NewDisposeScope();
        var sum = (perToken * mask).sum(1);                                        // (B)
        var result = reduction switch
        {
            LogProbReduction.Sum => sum,
            LogProbReduction.Mean => sum / mask.sum(1).clamp(min: 1),
            _ => throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "known reductions: Sum, Mean"),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Number of real completion tokens per row (B), float32.</summary>
    public Tensor TokenCounts() => Mask.sum(1);
}
