using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// A tokenizer.json pre-tokenizer as a list of steps, each splitting every piece the previous steps
/// produced (Hugging Face's Sequence semantics): Split with a regex (behavior Isolated: matches and the
/// gaps between them become pieces) and Digits. The final ByteLevel step maps bytes to symbols, which the
/// BPE library does; its use_regex is a Split with GPT-2's pattern (<see cref="TokenizerJsonFile.Gpt2Pattern"/>).
/// </summary>
/// <remarks>
/// .NET's regex engine matches UTF-16 code units, Hugging Face's Rust engine code points: a letter or digit
/// outside the Basic Multilingual Plane (𝐀, 𝟘, CJK extension B) would be two "other" units here, and
/// "𝟘's" would split as "𝟘'" + "s" instead of "𝟘" + "'s". So text with such characters is matched in a
/// stand-in string where each of them is one BMP character of the same Unicode category (see
/// <see cref="StandIns"/>); the pieces are mapped back to the real text. Patterns see the same classes
/// (\p{L}, \p{N}, \s, ...) code point by code point, as in Hugging Face; only a pattern that names an
/// astral character literally would notice.
/// </remarks>
public sealed class ByteLevelPreTokenizer
{
    private readonly IReadOnlyList<Step> steps;

    public ByteLevelPreTokenizer(IReadOnlyList<Step> steps) => this.steps = steps;

    /// <summary>One step; build with <see cref="Split"/> or <see cref="Digits"/>.</summary>
    public sealed record Step(Regex? Pattern, bool? IndividualDigits)
    {
        public static Step Split(string pattern) => new(new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled), null);

        public static Step Digits(bool individual) => new(null, individual);
    }

    /// <summary>The pieces of <paramref name="text"/> as (start, length) in UTF-16 units, in order, covering it all.</summary>
    public List<(int Start, int Length)> Split(string text)
    {
        if (text.Length == 0) return [];
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return SplitBmp(text);

        // One char per code point: astral ones become a stand-in of their category; starts[i] = where char i began.
        var standIn = new char[text.Length];
        var starts = new int[text.Length + 1];
        var count = 0;
        for (var at = 0; at < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(at), out var rune, out var consumed);
            standIn[count] = consumed == 1 ? text[at] : StandIns[(int)Rune.GetUnicodeCategory(rune)];
            starts[count++] = at;
            at += consumed;
        }
        starts[count] = text.Length;
        var pieces = SplitBmp(new string(standIn, 0, count));
        for (var i = 0; i < pieces.Count; i++)
        {
            var (start, length) = pieces[i];
            pieces[i] = (starts[start], starts[start + length] - starts[start]);
        }
        return pieces;
    }

    /// <summary>For each Unicode category, a BMP character of it from U+0800 up (clear of Latin letters that case-fold
    /// to the ASCII of a pattern's literals, like ſ → s).</summary>
    internal static readonly char[] StandIns = BuildStandIns();

    private static char[] BuildStandIns()
    {
        var standIns = new char[(int)UnicodeCategory.OtherNotAssigned + 1];
        for (var c = 0xFFFF; c >= 0x0800; c--)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            standIns[(int)CharUnicodeInfo.GetUnicodeCategory((char)c)] = (char)c;
        }
        return standIns;
    }

    private List<(int Start, int Length)> SplitBmp(string text)
    {
        var pieces = new List<(int, int)> { (0, text.Length) };
        foreach (var step in steps)
        {
            var next = new List<(int, int)>(pieces.Count * 2);
            foreach (var (start, length) in pieces)
            {
                if (step.Pattern is { } pattern) SplitByRegex(pattern, text.AsSpan(start, length), start, next);
                else SplitDigits(text.AsSpan(start, length), start, step.IndividualDigits == true, next);
            }
            pieces = next;
        }
        return pieces;
    }

    private static void SplitByRegex(Regex pattern, ReadOnlySpan<char> piece, int offset, List<(int, int)> output)
    {
        var at = 0;
        foreach (var match in pattern.EnumerateMatches(piece))
        {
            if (match.Length == 0) continue;
            if (match.Index > at) output.Add((offset + at, match.Index - at));
            output.Add((offset + match.Index, match.Length));
            at = match.Index + match.Length;
        }
        if (at < piece.Length) output.Add((offset + at, piece.Length - at));
    }

    /// <summary>Hugging Face's Digits: every numeric character (Nd, Nl, No, as Rust's char::is_numeric) alone,
    /// or runs of them, isolated from the rest.</summary>
    private static void SplitDigits(ReadOnlySpan<char> piece, int offset, bool individual, List<(int, int)> output)
    {
        var runStart = 0;
        bool? runIsDigit = null;
        for (var at = 0; at < piece.Length;)
        {
            Rune.DecodeFromUtf16(piece[at..], out var rune, out var consumed);
            var isDigit = Rune.GetUnicodeCategory(rune) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
            if (runIsDigit is { } previous && (isDigit != previous || isDigit && individual))
            {
                output.Add((offset + runStart, at - runStart));
                runStart = at;
            }
            runIsDigit = isDigit;
            at += consumed;
        }
        if (piece.Length > runStart) output.Add((offset + runStart, piece.Length - runStart));
    }
}
