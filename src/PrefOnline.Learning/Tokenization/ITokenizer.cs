namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// Text ↔ token ids. Implementations: <c>ByteTokenizer</c> (the built-in models: 256 byte values plus
/// special tokens), <c>Gpt2BpeTokenizer</c> (vocab.json + merges.txt) and <c>HuggingFaceBpeTokenizer</c>
/// (a byte-level BPE tokenizer.json: Llama 3, Qwen2/3, SmolLM, GPT-2). All are lossless on
/// arbitrary UTF-8, invalid sequences included: decoding the tokens of some bytes gives those bytes.
/// <c>TokenizerLoader</c> picks the right one for a checkpoint directory and saves its files.
/// </summary>
/// <remarks>
/// Implementations are immutable and safe to call from several threads at once.
/// Special tokens (end of sequence, padding) are never produced by <see cref="Encode"/>: text that
/// spells "&lt;|endoftext|&gt;" is encoded as ordinary characters, so user text can never inject a
/// control token. Callers append <see cref="EndOfSequenceId"/> themselves where it belongs.
/// </remarks>
public interface ITokenizer
{
    /// <summary>Number of token ids (the model's vocabulary size must be at least this).</summary>
    int VocabularySize { get; }

    /// <summary>End of sequence: sampling stops when it is drawn; appended to training completions.</summary>
    int EndOfSequenceId { get; }

    /// <summary>Every id that ends a completion when sampled: <see cref="EndOfSequenceId"/> first, then any other
    /// end-of-sequence id the checkpoint declares (generation_config.json's eos_token_id may be a list, e.g.
    /// Llama 3 Instruct's &lt;|end_of_text|&gt;, &lt;|eom_id|&gt;, &lt;|eot_id|&gt;).</summary>
    IReadOnlyList<int> StopIds => [EndOfSequenceId];

    /// <summary>The token the model expects before a prompt (Llama 3's &lt;|begin_of_text|&gt;), or null when the
    /// checkpoint's tokenizer adds none (GPT-2, Qwen). Encode never adds it; whoever builds a prompt prepends it.</summary>
    int? BeginningOfSequenceId => null;

    /// <summary>Used to pad batches; never predicted (masked out of every loss). May equal
    /// <see cref="EndOfSequenceId"/> (GPT-2 has no pad token), so masks must come from lengths, not ids.</summary>
    int PaddingId { get; }

    /// <summary>How the checkpoint writes a special token (Decode drops them): GPT-2's &lt;|endoftext|&gt;, Llama 3's
    /// &lt;|end_of_text|&gt;, whatever its tokenizer files name; null when <paramref name="id"/> is an ordinary token.
    /// For showing token ids to a person (<c>prefonline generate --json</c>), never for encoding.</summary>
    string? SpecialTokenText(int id) => null;

    /// <summary>Tokens of the UTF-8 encoding of <paramref name="text"/>. A lone UTF-16 surrogate has no
    /// UTF-8 form and is encoded as U+FFFD; use <see cref="EncodeBytes"/> for exact arbitrary bytes.</summary>
    int[] Encode(string text);

    /// <summary>Tokens of arbitrary bytes (invalid UTF-8 included); <see cref="DecodeBytes"/> returns them exactly.</summary>
    int[] EncodeBytes(ReadOnlySpan<byte> utf8);

    /// <summary>Text of the ids; special tokens are dropped; invalid UTF-8 becomes U+FFFD (one per
    /// maximal invalid subsequence, as Python's errors="replace"). An id outside the vocabulary throws
    /// <see cref="ArgumentOutOfRangeException"/>.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The exact bytes of the ids (special tokens dropped).</summary>
    byte[] DecodeBytes(ReadOnlySpan<int> ids);
}

/// <summary>How every prompt given as text becomes token ids, for generation, log-probs, the learner and the
/// reward model alike (a prompt given as ids, such as a rollout's, is used exactly as given).</summary>
public static class PromptTokens
{
    /// <summary>[<see cref="ITokenizer.BeginningOfSequenceId"/>] + Encode(prompt) when the tokenizer declares a
    /// beginning-of-sequence token (Llama 3's &lt;|begin_of_text|&gt;, as Hugging Face's post-processor adds it);
    /// Encode(prompt) otherwise, where an empty prompt becomes [end of sequence] (GPT-2's start token), since a
    /// model needs at least one token to predict from.</summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = tokenizer.Encode(prompt);
        if (tokenizer.BeginningOfSequenceId is { } bos) return [bos, .. ids];
        return ids.Length > 0 ? ids : [tokenizer.EndOfSequenceId];
    }
}
