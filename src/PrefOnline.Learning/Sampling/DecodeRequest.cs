using PrefOnline.Kernels;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Randomness;

namespace PrefOnline.Learning.Sampling;

/// <summary>
/// One call of <see cref="IPolicyDecoder.Generate"/>: prompts as token ids, and how to sample. Rows are
/// numbered prompt·<see cref="SamplesPerPrompt"/> + sample. <see cref="Problems"/> checks every number
/// against the model (each backend calls it first) and names the offending one.
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

    /// <summary>A row stops after sampling any of these ids (kept as its last token): the tokenizer's
    /// <see cref="Tokenization.ITokenizer.StopIds"/>, end of sequence first. Empty: none.</summary>
    public IReadOnlyList<int> StopIds { get; init; } = [];

    /// <summary>One seed per row: a row's draws depend only on its seed (and its logits), never on
    /// the rest of the batch. When null, the seeds are drawn from <see cref="SeedSource"/>, one per row.</summary>
    public IReadOnlyList<ulong>? RowSeeds { get; init; }

    public Xoshiro256StarStar? SeedSource { get; init; }

    /// <summary>Token ids that are never sampled (padding, for instance). They still count in
    /// <see cref="DecodedSequence.PolicyLogProbs"/>' softmax, as in a learner's forward pass.</summary>
    public IReadOnlyList<int> SuppressedTokens { get; init; } = [];

    /// <summary>Byte sequences that end a row as soon as its tokens' bytes contain one (needs <see cref="TokenBytes"/>).</summary>
    public IReadOnlyList<byte[]> StopSequences { get; init; } = [];

    public TokenByteTable? TokenBytes { get; init; }

    public int Rows => Prompts.Count * SamplesPerPrompt;

    /// <summary>Every backend's first step: throws <see cref="ArgumentException"/> listing every problem of
    /// this request for <paramref name="config"/>'s vocabulary and context.</summary>
    public void ThrowIfInvalidFor(DecoderConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = Problems(config.VocabularySize, config.ContextLength);
        if (problems.Count > 0) throw new ArgumentException($"invalid decode request: {string.Join("; ", problems)}");
    }

    /// <summary>Every problem with this request for a model of <paramref name="vocabulary"/> token ids
    /// and <paramref name="context"/> positions, or an empty list.</summary>
    public IReadOnlyList<string> Problems(int vocabulary, int context)
    {
        var problems = new List<string>();
        if (!double.IsFinite(Temperature) || Temperature < 0) problems.Add($"temperature {Temperature} must be finite and >= 0 (0 = greedy)");
        if (!(TopP > 0 && TopP <= 1)) problems.Add($"top_p {TopP} must be in (0, 1]");
        if (TopK < 0) problems.Add($"top_k {TopK} must be >= 0 (0 = off)");
        if (MaxNewTokens < 1) problems.Add($"max_new_tokens {MaxNewTokens} must be >= 1");
        if (SamplesPerPrompt < 1) problems.Add($"samples_per_prompt {SamplesPerPrompt} must be >= 1");
        foreach (var id in StopIds ?? [])
            if (id < 0 || id >= vocabulary) problems.Add($"stop id {id} is outside the vocabulary of {vocabulary}");
        if (Prompts is null || Prompts.Count == 0) problems.Add("at least one prompt is needed");
        else
        {
            for (var i = 0; i < Prompts.Count; i++)
            {
                var prompt = Prompts[i];
                if (prompt is null || prompt.Length == 0) problems.Add($"prompt {i} is empty");
                else if (prompt.Any(id => id < 0 || id >= vocabulary)) problems.Add($"prompt {i} holds a token id outside the vocabulary of {vocabulary}");
                else if (MaxNewTokens >= 1 && prompt.Length + MaxNewTokens > context)
                    problems.Add($"prompt {i} has {prompt.Length} tokens; with max_new_tokens {MaxNewTokens} it exceeds the context of {context}");
            }
            if (RowSeeds is not null && RowSeeds.Count != Rows)
                problems.Add($"{RowSeeds.Count} row seeds given for {Rows} rows ({Prompts.Count} prompts × {SamplesPerPrompt} samples)");
        }
        if (RowSeeds is null && SeedSource is null) problems.Add("a decode request needs RowSeeds or a SeedSource");
        var suppressed = SuppressedTokens ?? [];
        foreach (var id in suppressed)
            if (id < 0 || id >= vocabulary) problems.Add($"suppressed token id {id} is outside the vocabulary of {vocabulary}");
        if (suppressed.Distinct().Count() >= vocabulary) problems.Add("every token is suppressed");
        var stops = StopSequences ?? [];
        for (var i = 0; i < stops.Count; i++)
            if (stops[i] is null || stops[i].Length == 0) problems.Add($"stop sequence {i} is empty");
        if (stops.Count > 0 && TokenBytes is null) problems.Add("stop sequences need a TokenByteTable");
        return problems;
    }

    /// <summary>The seed of every row: <see cref="RowSeeds"/>, or one draw per row from <see cref="SeedSource"/>.</summary>
    public ulong[] Seeds() =>
        RowSeeds?.ToArray() ?? Enumerable.Range(0, Rows).Select(_ => SeedSource!.NextUInt64()).ToArray();
}
