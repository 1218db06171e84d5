using System.Text;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// The built-in models' tokenizer: token id = byte value (0..255), then two special tokens,
/// 256 = &lt;|endoftext|&gt; (end of sequence) and 257 = &lt;|pad|&gt;, so <see cref="VocabularySize"/> is 258
/// (the default vocabulary of <c>Gpt2Config.Tiny</c>). Any byte string round-trips exactly.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public const int EndOfSequence = 256;
    public const int Padding = 257;
    public const int Size = 258;

    /// <summary>The class name written to tokenizer_config.json so <see cref="TokenizerLoader"/> recognises the directory.</summary>
    public const string ConfigClassName = "PrefOnlineByteTokenizer";

    public const string EndOfSequenceToken = "<|endoftext|>";
    public const string PaddingToken = "<|pad|>";

    /// <summary>Stateless, so one shared instance serves everyone.</summary>
    public static ByteTokenizer Instance { get; } = new();

    public int VocabularySize => Size;

    public int EndOfSequenceId => EndOfSequence;

    public int PaddingId => Padding;

    public string? SpecialTokenText(int id) => id switch
    {
        EndOfSequence => EndOfSequenceToken,
        Padding => PaddingToken,
        _ => null,
    };

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Encoding.UTF8 replaces a lone surrogate with U+FFFD (EF BF BD) instead of throwing.
        return EncodeBytes(Encoding.UTF8.GetBytes(text));
    }

    public int[] EncodeBytes(ReadOnlySpan<byte> utf8)
    {
        var ids = new int[utf8.Length];
        for (var i = 0; i < utf8.Length; i++) ids[i] = utf8[i];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var count = 0;
        foreach (var id in ids)
        {
            if ((uint)id >= Size) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id {id} is outside the byte vocabulary (0..{Size - 1})");
            if (id < 256) count++;
        }
        var bytes = new byte[count];
        var at = 0;
        foreach (var id in ids)
            if (id < 256) bytes[at++] = (byte)id;
        return bytes;
    }

    /// <summary>Writes tokenizer_config.json naming this tokenizer, so the directory loads back as bytes.</summary>
    /// <exception cref="IOException">The directory already holds GPT-2 BPE files (vocab.json / merges.txt),
    /// which the loader would prefer; mixing the two would silently change the tokenizer.</exception>
    public void Save(string directory) => TokenizerFiles.WriteByteTokenizerConfig(directory);
}
