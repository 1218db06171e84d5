namespace PrefOnline.Kernels;

/// <summary>
/// One <see cref="FusedGpt2Decoder.Generate"/> call: prompts as token ids, and how to sample. Rows
/// are numbered prompt·<see cref="SamplesPerPrompt"/> + sample. The native side validates the numbers
/// and names the offending one.
/// </summary>
public sealed record FusedDecodeRequest
{
    /// <summary>Prompt token ids; each needs at least one token, and prompt + <see cref="MaxNewTokens"/> must fit the context.</summary>
    public required IReadOnlyList<int[]> Prompts { get; init; }

    public int SamplesPerPrompt { get; init; } = 1;

    /// <summary>Logits are divided by it before sampling; 0 means greedy (argmax).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep only the k most likely tokens (0 = off; 1 = greedy).</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus: keep the smallest set of most likely tokens whose probability reaches it (1 = off).</summary>
    public double TopP { get; init; } = 1.0;

    public int MaxNewTokens { get; init; } = 64;

    /// <summary>A row stops after sampling this id (kept as its last token); -1 = none.</summary>
    public int EndOfSequenceId { get; init; } = -1;

    /// <summary>
    /// One seed per row (<see cref="Rows"/> of them). A row's samples depend only on its seed and the
    /// weights, never on the rest of the batch or the thread count: each sampled token takes one
    /// uniform from the row's own xoshiro256** stream seeded through SplitMix64 (native/row_random.h),
    /// the same stream as PrefOnline.Learning's Xoshiro256StarStar draws from that seed.
    /// </summary>
    public required IReadOnlyList<ulong> RowSeeds { get; init; }

    /// <summary>Token ids that are never sampled (padding, for instance). They still count in
    /// <see cref="FusedDecodedRow.PolicyLogProbs"/>' softmax, as in a learner's forward pass.</summary>
    public IReadOnlyList<int> SuppressedTokens { get; init; } = [];

    /// <summary>Byte sequences that end a row as soon as its tokens' bytes contain one (needs <see cref="TokenBytes"/>).</summary>
    public IReadOnlyList<byte[]> StopSequences { get; init; } = [];

    public TokenByteTable? TokenBytes { get; init; }

    public int Rows => Prompts.Count * SamplesPerPrompt;
}

/// <summary>
/// One sampled row: the new tokens (the end-of-sequence token included when that is why it stopped)
/// and, per token, two log-probabilities:
/// <list type="bullet">
/// <item><see cref="PolicyLogProbs"/>: log softmax(logits)[token] — the model's own distribution at
/// temperature 1, untruncated: what a learner recomputes in its forward pass (PPO ratios, KL).</item>
/// <item><see cref="SamplerLogProbs"/>: log q(token) under the distribution actually sampled from
/// (temperature, top-k, top-p applied and renormalised; 0 for greedy).</item>
/// </list>
/// With temperature 1, no top-k and top-p 1 the two are equal.
/// </summary>
public sealed record FusedDecodedRow(
    int PromptIndex,
    int SampleIndex,
    int[] Tokens,
    float[] PolicyLogProbs,
    float[] SamplerLogProbs,
    FusedDecodeFinish Finish);

/// <summary>Why a decoded row stopped (numbered as the native decoder reports it).</summary>
public enum FusedDecodeFinish
{
    /// <summary>It reached the maximum number of new tokens.</summary>
    Length = 0,

    /// <summary>It sampled the end-of-sequence token (which is the row's last token).</summary>
    EndOfSequence = 1,

    /// <summary>The bytes of its tokens came to contain one of the stop sequences.</summary>
    StopSequence = 2,
}
