using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.LogProbs;

/// <summary>
/// A batch of (prompt, completion) token sequences laid out for scoring: each row is prompt ++
/// completion, right-padded to the longest row, with the completion's tokens and mask gathered into
/// (B, Tc) tensors whose column j is the row's j-th completion token. Masks come from lengths, never
/// from token ids (GPT-2's padding id can equal its end-of-sequence id).
/// </summary>
/// <remarks>
/// Context-length truncation, per row, when prompt + completion exceeds the context N:
/// <list type="number">
/// <item>the completion is what is scored, so it is kept whole and the prompt loses its OLDEST tokens
///   (its last N − C tokens are kept, the end nearest the completion);</item>
/// <item>if the completion alone needs more than N − 1 positions, only the prompt's last token is kept
///   and the completion is cut to its first N − 1 tokens; <see cref="CompletionTruncated"/> says so, and
///   its log-prob is then that of a prefix.</item>
/// </list>
/// An empty prompt is replaced by the end-of-sequence token (GPT-2's &lt;|endoftext|&gt; doubles as the
/// start token), because the first completion token needs a position to be predicted from.
/// The batch owns its tensors (outside any scope); dispose it when done.
/// </remarks>
public sealed class SequenceBatch : IDisposable
{
    private SequenceBatch(int maxTokenId, int[] promptLengths, int[] completionLengths, int[] promptTokensDropped, bool[] completionTruncated,
                          Tensor tokens, Tensor completionTokens, Tensor completionMask, Tensor predictorPositions, Tensor lastTokenPositions)
    {
        MaxTokenId = maxTokenId;
        PromptLengths = promptLengths;
        CompletionLengths = completionLengths;
        PromptTokensDropped = promptTokensDropped;
        CompletionTruncated = completionTruncated;
        Tokens = tokens.DetachFromDisposeScope();
        CompletionTokens = completionTokens.DetachFromDisposeScope();
        CompletionMask = completionMask.DetachFromDisposeScope();
        PredictorPositions = predictorPositions.DetachFromDisposeScope();
        LastTokenPositions = lastTokenPositions.DetachFromDisposeScope();
    }

    /// <summary>The largest token id in the batch (checked against the model's vocabulary before a forward).</summary>
    public int MaxTokenId { get; }

    /// <summary>Rows (B).</summary>
    public int Count => PromptLengths.Count;

    /// <summary>(B, T) int64: prompt ++ completion, right-padded with the padding id.</summary>
    public Tensor Tokens { get; }

    /// <summary>(B, Tc) int64: completion tokens, column j = token j of the row's completion (padding beyond).</summary>
    public Tensor CompletionTokens { get; }

    /// <summary>(B, Tc) float32: 1 for a real completion token, 0 for padding.</summary>
    public Tensor CompletionMask { get; }

    /// <summary>(B, Tc) int64: the position whose logits predict completion token j (P − 1 + j; 0 under padding).</summary>
    public Tensor PredictorPositions { get; }

    /// <summary>(B) int64: position of each row's last real token (where a reward head reads).</summary>
    public Tensor LastTokenPositions { get; }

    /// <summary>Prompt tokens per row after truncation (≥ 1).</summary>
    public IReadOnlyList<int> PromptLengths { get; }

    /// <summary>Completion tokens per row after truncation.</summary>
    public IReadOnlyList<int> CompletionLengths { get; }

    /// <summary>Oldest prompt tokens dropped per row to fit the context.</summary>
    public IReadOnlyList<int> PromptTokensDropped { get; }

    /// <summary>Rows whose completion had to be cut to fit the context (their log-prob is of a prefix).</summary>
    public IReadOnlyList<bool> CompletionTruncated { get; }

    /// <summary>
    /// Tokenizes (prompt, completion) text pairs and lays them out. With
    /// <paramref name="appendEndOfSequence"/> each completion ends with the end-of-sequence token, so
    /// its log-prob includes the decision to stop (as a sampled completion that stopped does).
    /// </summary>
    public static SequenceBatch FromText(ITokenizer tokenizer, IReadOnlyList<(string Prompt, string Completion)> pairs, int contextLength, bool appendEndOfSequence = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var rows = new List<(int[] Prompt, int[] Completion)>(pairs.Count);
        foreach (var (prompt, completion) in pairs)
        {
            var c = tokenizer.Encode(completion);
            if (appendEndOfSequence) c = [.. c, tokenizer.EndOfSequenceId];
            rows.Add((EncodePrompt(tokenizer, prompt), c));
        }
        return FromTokens(rows, contextLength, tokenizer.PaddingId);
    }

    /// <summary>A prompt's tokens, as <see cref="PromptTokens.EncodePrompt"/> makes them everywhere: the tokenizer's
    /// beginning-of-sequence token first when it has one; an empty prompt otherwise becomes [end-of-sequence].</summary>
    public static int[] EncodePrompt(ITokenizer tokenizer, string prompt) => tokenizer.EncodePrompt(prompt);

    /// <summary>Lays out token rows (e.g. sampled rollouts, whose exact ids must be scored rather than
    /// a re-tokenization of their text). Prompts must be non-empty; see the remarks for truncation.</summary>
    public static SequenceBatch FromTokens(IReadOnlyList<(int[] Prompt, int[] Completion)> rows, int contextLength, int paddingId)
    {
        if (rows.Count == 0) throw new ArgumentException("a sequence batch needs at least one row");
        if (contextLength < 2) throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "context must hold at least 2 tokens");
        var b = rows.Count;
        var prompts = new int[b][];
        var completions = new int[b][];
        var dropped = new int[b];
        var truncated = new bool[b];
        for (var i = 0; i < b; i++)
        {
            var (prompt, completion) = rows[i];
            ArgumentNullException.ThrowIfNull(prompt);
            ArgumentNullException.ThrowIfNull(completion);
            if (prompt.Length == 0)
                throw new ArgumentException($"row {i} has an empty prompt; start it with the end-of-sequence token (SequenceBatch.EncodePrompt does)");
            if (prompt.Concat(completion).Any(id => id < 0))
                throw new ArgumentException($"row {i} holds a negative token id");
            if (completion.Length > contextLength - 1)
            {
                truncated[i] = true;
                completion = completion[..(contextLength - 1)];
            }
            var room = contextLength - completion.Length;
            if (prompt.Length > room)
            {
                dropped[i] = prompt.Length - room;
                prompt = prompt[^room..];
            }
            prompts[i] = prompt;
            completions[i] = completion;
        }

        var t = Enumerable.Range(0, b).Max(i => prompts[i].Length + completions[i].Length);
        var tc = Math.Max(1, completions.Max(c => c.Length));
        var tokens = new long[b * t];
        var completionTokens = new long[b * tc];
        var mask = new float[b * tc];
        var predictors = new long[b * tc];
        var last = new long[b];
        Array.Fill(tokens, paddingId);
        Array.Fill(completionTokens, paddingId);
        for (var i = 0; i < b; i++)
        {
            var (p, c) = (prompts[i], completions[i]);
            for (var j = 0; j < p.Length; j++) tokens[i * t + j] = p[j];
            for (var j = 0; j < c.Length; j++)
            {
                tokens[i * t + p.Length + j] = c[j];
                completionTokens[i * tc + j] = c[j];
                mask[i * tc + j] = 1;
                predictors[i * tc + j] = p.Length - 1 + j;
            }
            last[i] = p.Length + c.Length - 1;
        }

        if (paddingId < 0) throw new ArgumentOutOfRangeException(nameof(paddingId), paddingId, "padding id must be a token id");
        var maxTokenId = Math.Max(paddingId, Enumerable.Range(0, b).Max(i => prompts[i].Concat(completions[i]).Max()));

        using var scope = NewDisposeScope();
        return new SequenceBatch(maxTokenId,
            prompts.Select(p => p.Length).ToArray(), completions.Select(c => c.Length).ToArray(), dropped, truncated,
            tensor(tokens, [b, t]), tensor(completionTokens, [b, tc]), tensor(mask, [b, tc]),
            tensor(predictors, [b, tc]), tensor(last, [b]));
    }

    public void Dispose()
    {
        Tokens.Dispose();
        CompletionTokens.Dispose();
        CompletionMask.Dispose();
        PredictorPositions.Dispose();
        LastTokenPositions.Dispose();
    }
}
