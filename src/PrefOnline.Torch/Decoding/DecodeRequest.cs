namespace PrefOnline.Torch.Decoding;

/// <summary>
/// One call of <see cref="Gpt2Decoder.Generate"/>: prompts as token ids, and how to sample. Rows are
/// numbered prompt·<see cref="SamplesPerPrompt"/> + sample. The native side validates the numbers and
/// names the offending one.
/// </summary>
public sealed record DecodeRequest
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

    /// <summary>One seed per row: a row's samples depend only on its seed (and the weights), never on
    /// the rest of the batch. When null, the seeds are drawn from <see cref="Generator"/>.</summary>
    public IReadOnlyList<ulong>? RowSeeds { get; init; }

    public Generator? Generator { get; init; }

    /// <summary>Token ids that are never sampled (padding, for instance). They still count in
    /// <see cref="DecodedSequence.PolicyLogProbs"/>' softmax, as in a learner's forward pass.</summary>
    public IReadOnlyList<int> SuppressedTokens { get; init; } = [];

    /// <summary>Byte sequences that end a row as soon as its tokens' bytes contain one (needs <see cref="TokenBytes"/>).</summary>
    public IReadOnlyList<byte[]> StopSequences { get; init; } = [];

    public TokenByteTable? TokenBytes { get; init; }

    public int Rows => Prompts.Count * SamplesPerPrompt;
}
