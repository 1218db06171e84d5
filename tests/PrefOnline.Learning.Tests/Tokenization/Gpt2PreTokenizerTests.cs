using System.Text;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>GPT-2's pre-tokenization regex, case by case (each expectation worked out from the regex's
/// alternatives; the Python cross-check then covers the same ground at scale).</summary>
public sealed class Gpt2PreTokenizerTests
{
    public static TheoryData<string, string[]> Cases => new()
    {
        { "Hello world", ["Hello", " world"] },
        { "don't", ["don", "'t"] },
        { "they're we've I'll he'd I'm it's", ["they", "'re", " we", "'ve", " I", "'ll", " he", "'d", " I", "'m", " it", "'s"] },
        { "I'M", ["I", "'", "M"] },                       // contractions are case-sensitive
        { "''s", ["''", "s"] },                          // a run of punctuation swallows apostrophes
        { " 's", [" '", "s"] },
        { "'self", ["'s", "elf"] },
        { "a  b", ["a", " ", " b"] },                    // \s+(?!\S) gives the last space to the word
        { "a   ", ["a", "   "] },                       // trailing run kept whole
        { "   ", ["   "] },
        { "a\n\nb", ["a", "\n", "\n", "b"] },            // a lone non-space whitespace before a word stands alone
        { "x\t y", ["x", "\t", " y"] },
        { "x \n y", ["x", " \n", " y"] },
        { "12abc x123 $100", ["12", "abc", " x", "123", " $", "100"] },
        { " ?!", [" ?!"] },
        { "e\u0301", ["e", "\u0301"] },                  // a combining mark is neither letter nor number
        { "𝐀𝐁c", ["𝐀𝐁c"] },                            // letters outside the BMP are letters (not in .NET's Regex)
        { "𝟘𝟙", ["𝟘𝟙"] },
        { "a\u001Cb", ["a", "\u001C", "b"] },            // U+001C is not \s for regex (it is for str.isspace)
        { "a\u00A0b", ["a", "\u00A0", "b"] },            // NBSP is \s but not the literal space
        { "a \u00A0b", ["a", " ", "\u00A0", "b"] },
        { "<|endoftext|>", ["<|", "endoftext", "|>"] },
        { "😀👍🏽 x", ["😀👍🏽", " x"] },
        { "", [] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Splits_like_the_gpt2_regex(string text, string[] expected) => Assert.Equal(expected, Pieces(text));

    [Fact]
    public void Invalid_bytes_are_other_characters_and_cover_the_input()
    {
        byte[] bytes = [0x61, 0x20, 0xFF, 0x80, 0x21, 0x62, 0x20, 0x20, 0xED, 0xA0, 0x80];
        var pieces = PiecesOf(bytes);
        Assert.Equal([[0x61], [0x20, 0xFF, 0x80, 0x21], [0x62], [0x20], [0x20, 0xED, 0xA0, 0x80]], pieces);
    }

    [Fact]
    public void Pieces_tile_any_byte_string() =>
        PropertyCheck.ForAll(PropertyCheck.Utf8LikeBytes(), bytes =>
            PiecesOf(bytes).SelectMany(p => p).SequenceEqual(bytes) && PiecesOf(bytes).All(p => p.Length > 0));

    internal static List<string> Pieces(string text) =>
        PiecesOf(Encoding.UTF8.GetBytes(text)).Select(p => Encoding.UTF8.GetString(p)).ToList();

    private static List<byte[]> PiecesOf(byte[] bytes)
    {
        var pieces = new List<byte[]>();
        for (var start = 0; start < bytes.Length;)
        {
            var end = Gpt2PreTokenizer.NextEnd(bytes, start);
            pieces.Add(bytes[start..end]);
            start = end;
        }
        return pieces;
    }
}
