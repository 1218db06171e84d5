namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// Text ↔ token ids. Implementations: <c>ByteTokenizer</c> (the built-in models: 256 byte values plus
/// special tokens) and <c>Gpt2BpeTokenizer</c> (vocab.json + merges.txt). Both are lossless on
/// arbitrary UTF-8, invalid sequences included: decoding the tokens of some bytes gives those bytes.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of token ids (the model's vocabulary size must be at least this).</summary>
    int VocabularySize { get; }

    /// <summary>End of sequence: sampling stops when it is drawn; appended to training completions.</summary>
    int EndOfSequenceId { get; }

    /// <summary>Used to pad batches; never predicted (masked out of every loss).</summary>
    int PaddingId { get; }

    int[] Encode(string text);

    int[] EncodeBytes(ReadOnlySpan<byte> utf8);

    /// <summary>Text of the ids; special tokens are dropped; invalid UTF-8 becomes U+FFFD.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The exact bytes of the ids (special tokens dropped).</summary>
    byte[] DecodeBytes(ReadOnlySpan<int> ids);
}
