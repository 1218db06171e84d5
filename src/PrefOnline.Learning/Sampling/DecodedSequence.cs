namespace PrefOnline.Learning.Sampling;

/// <summary>
/// One sampled row: the new tokens (the end-of-sequence token included when that is why it stopped)
/// and, per token, two log-probabilities:
/// <list type="bullet">
/// <item><see cref="PolicyLogProbs"/>: log softmax(logits)[token] — the model's own distribution at
/// temperature 1, untruncated. This is what a learner recomputes in its forward pass, so it is the
/// behaviour log-prob for PPO ratios and KL estimates.</item>
/// <item><see cref="SamplerLogProbs"/>: log q(token) under the distribution actually sampled from
/// (temperature, top-k, top-p applied and renormalised; 0 for greedy). Use it for exact importance
/// weights of the sampling procedure itself.</item>
/// </list>
/// With temperature 1, no top-k and top-p 1 the two are equal.
/// </summary>
public sealed record DecodedSequence(
    int PromptIndex,
    int SampleIndex,
    int[] Tokens,
    float[] PolicyLogProbs,
    float[] SamplerLogProbs,
    DecodeFinish Finish);
