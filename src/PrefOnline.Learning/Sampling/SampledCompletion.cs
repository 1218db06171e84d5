namespace PrefOnline.Learning.Sampling;

/// <summary>
/// One sampled completion of one prompt. <see cref="Text"/> is always the decoding of
/// <see cref="Tokens"/>, and <see cref="PolicyLogProbs"/> / <see cref="SamplerLogProbs"/> hold one
/// value per token of <see cref="Tokens"/>.
/// </summary>
/// <remarks>
/// Which log-probs a learner should use: <see cref="PolicyLogProbs"/> (and <see cref="LogProb"/>, their
/// sum) are log π(token | prefix) at temperature 1 without truncation — exactly what the learner's own
/// forward pass computes for these tokens, so they are PPO's behaviour (old-policy) log-probs: the
/// ratio π_θ/π_old is then exactly 1 before the first update and measures only the policy's change.
/// <see cref="SamplerLogProbs"/> are log q(token) under the distribution really sampled from
/// (temperature, top-k, top-p, renormalised; 0 for greedy). Using those as "old" log-probs would make
/// the ratio differ from 1 by the sampler's distortion even with no update, and PPO's clipping would
/// then clip the wrong thing. They are recorded for exact off-policy corrections (importance weights
/// π/q) when sampling is not at temperature 1 / untruncated; at temperature 1 with top-k off and
/// top-p 1 the two coincide.
/// </remarks>
public sealed record SampledCompletion
{
    /// <summary>Index of the prompt in the call's input.</summary>
    public required int PromptIndex { get; init; }

    /// <summary>Which of the prompt's K samples this is (0-based).</summary>
    public required int SampleIndex { get; init; }

    /// <summary>The prompt tokens the model was conditioned on (after left truncation, if any).</summary>
    public required int[] PromptTokens { get; init; }

    /// <summary>True when the prompt was longer than context − max new tokens and lost its oldest tokens.</summary>
    public required bool PromptTruncated { get; init; }

    /// <summary>The completion's tokens; ends with the stop id sampled (one of the tokenizer's <c>StopIds</c>) when <see cref="FinishReason"/> is EndOfSequence.</summary>
    public required int[] Tokens { get; init; }

    public required string Text { get; init; }

    /// <summary>log π(token) under the untempered, untruncated policy, per token (see remarks).</summary>
    public required float[] PolicyLogProbs { get; init; }

    /// <summary>log q(token) under the sampling distribution actually used, per token (see remarks).</summary>
    public required float[] SamplerLogProbs { get; init; }

    /// <summary>Σ <see cref="PolicyLogProbs"/>: the completion's log-probability under the policy.</summary>
    public double LogProb => PolicyLogProbs.Sum(v => (double)v);

    /// <summary>Σ <see cref="SamplerLogProbs"/>.</summary>
    public double SamplerLogProb => SamplerLogProbs.Sum(v => (double)v);

    public required FinishReason FinishReason { get; init; }

    /// <summary>Version of the policy weights that generated it (the sampler's version source at call time).</summary>
    public required long PolicyVersion { get; init; }

    /// <summary>The row's own seed: with the same weights and options it reproduces this completion.</summary>
    public required ulong Seed { get; init; }
}
