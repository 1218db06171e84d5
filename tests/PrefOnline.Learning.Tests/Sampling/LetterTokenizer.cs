using System.Text;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>
/// A test tokenizer whose every token is readable ASCII, so tests can reason about text: ids 0–25 are
/// the letters a–z, ids 26–51 the doubled letters "aa"–"zz" (tokens spanning two bytes, as BPE has),
/// 52 is end-of-sequence, 53 padding. Encoding maps each letter to its single-letter id.
/// </summary>
internal sealed class LetterTokenizer : ITokenizer
{
    public const int Eos = 52;

    public int VocabularySize => 54;

    public int EndOfSequenceId => Eos;

    public int PaddingId => 53;

    /// <summary>Every id that ends a completion; a test may add one beside <see cref="Eos"/>.</summary>
    public IReadOnlyList<int> StopIds { get; init; } = [Eos];

    /// <summary>None unless a test sets one (prompts then start with it).</summary>
    public int? BeginningOfSequenceId { get; init; }

    public int[] Encode(string text) => EncodeBytes(Encoding.UTF8.GetBytes(text));

    public int[] EncodeBytes(ReadOnlySpan<byte> utf8)
    {
        var ids = new int[utf8.Length];
        for (var i = 0; i < utf8.Length; i++)
        {
            if (utf8[i] < 'a' || utf8[i] > 'z') throw new ArgumentException($"the letter tokenizer encodes a-z only, not byte {utf8[i]}");
            ids[i] = utf8[i] - 'a';
        }
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.ASCII.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (id < 26) bytes.Add((byte)('a' + id));
            else if (id < 52) bytes.AddRange([(byte)('a' + id - 26), (byte)('a' + id - 26)]);
        }
        return bytes.ToArray();
    }
}
