using System.Buffers;
using System.Globalization;
using System.Text;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// GPT-2's pre-tokenization, the regex
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
/// applied left to right (Python <c>regex.findall</c>), written as a scanner over UTF-8 bytes.
/// </summary>
/// <remarks>
/// Why not .NET's Regex: it matches UTF-16 code units, so a letter or digit outside the BMP (a
/// surrogate pair, category Cs per unit) would fall into <c>[^\s\p{L}\p{N}]</c> where Python's regex
/// sees a letter; the scanner classifies whole code points, and is several times faster.
/// Classes: \p{L} = Lu Ll Lt Lm Lo, \p{N} = Nd Nl No, \s = the Unicode White_Space property (what
/// Python's <c>regex</c> module matches; it excludes U+001C..U+001F, unlike <c>str.isspace</c>).
/// Bytes that are not valid UTF-8 count as "other" (neither letter, number nor space), exactly what
/// Python's regex does with them after <c>bytes.decode("utf-8", "surrogateescape")</c>: that extends
/// GPT-2 to arbitrary bytes without changing anything for valid UTF-8.
/// The contractions are case-sensitive ("'S" is not one), as in GPT-2.
/// </remarks>
internal static class Gpt2PreTokenizer
{
    internal enum CharClass : byte { Letter, Number, Space, Other }

    private static readonly CharClass[] AsciiClass = BuildAsciiClasses();

    /// <summary>End (exclusive) of the pre-token that starts at <paramref name="start"/> (&lt; text.Length).</summary>
    public static int NextEnd(ReadOnlySpan<byte> text, int start)
    {
        var n = text.Length;
        var first = text[start];

        // 's 't 're 've 'm 'll 'd, tried before everything else.
        if (first == '\'' && start + 1 < n)
        {
            var b1 = text[start + 1];
            if (b1 is (byte)'s' or (byte)'t' or (byte)'m' or (byte)'d') return start + 2;
            if (start + 2 < n)
            {
                var b2 = text[start + 2];
                if ((b1 == 'r' && b2 == 'e') || (b1 == 'v' && b2 == 'e') || (b1 == 'l' && b2 == 'l')) return start + 3;
            }
        }

        // " ?X+" for X in letter, number, other: one literal space may lead the run.
        if (first == ' ' && start + 1 < n)
        {
            var next = ClassAt(text, start + 1, out var nextLength);
            if (next != CharClass.Space) return RunEnd(text, start + 1 + nextLength, next);
        }

        var cls = ClassAt(text, start, out var length);
        if (cls != CharClass.Space) return RunEnd(text, start + length, cls);

        // Whitespace: \s+(?!\S) takes the run but, before a non-space, gives back its last character
        // (which then leads the next token, e.g. "  x" → " ", " x"); a single space before a
        // non-space fails that and \s+ takes it alone.
        var position = start + length;
        var lastStart = start;
        while (position < n)
        {
            if (ClassAt(text, position, out var l) != CharClass.Space) break;
            lastStart = position;
            position += l;
        }
        if (position == n) return n;
        return lastStart > start ? lastStart : position;
    }

    private static int RunEnd(ReadOnlySpan<byte> text, int position, CharClass cls)
    {
        while (position < text.Length && ClassAt(text, position, out var length) == cls) position += length;
        return position;
    }

    private static CharClass ClassAt(ReadOnlySpan<byte> text, int position, out int length)
    {
        var b = text[position];
        if (b < 0x80)
        {
            length = 1;
            return AsciiClass[b];
        }
        // Invalid or truncated UTF-8: `length` is the maximal invalid subsequence; it is "other".
        if (Rune.DecodeFromUtf8(text[position..], out var rune, out length) != OperationStatus.Done) return CharClass.Other;
        return ClassOf(rune);
    }

    internal static CharClass ClassOf(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
        // Rune.IsWhiteSpace is the White_Space property (checked code point by code point against Python's regex in the tests).
        _ => Rune.IsWhiteSpace(rune) ? CharClass.Space : CharClass.Other,
    };

    private static CharClass[] BuildAsciiClasses()
    {
        var classes = new CharClass[128];
        for (var c = 0; c < 128; c++) classes[c] = ClassOf(new Rune(c));
        return classes;
    }
}
