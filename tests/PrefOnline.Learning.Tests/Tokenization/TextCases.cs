using System.Text;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>Texts and byte strings the tokenizer tests share: hand-picked edge cases and a seeded random mix.</summary>
internal static class TextCases
{
    /// <summary>English prose of the training and speed corpora: Debian's license texts (package base-files, always installed).</summary>
    public const string LicenseDirectory = "/usr/share/common-licenses";

    public static readonly string[] Hand =
    [
        "",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "I can't believe it's not butter; they're sure we've done what you'll say I'd do. I'm here.",
        "DON'T SHOUT'S 'S 'LL",
        "''s '' 's a'sb ' '' x' 'ss 're're",
        "  leading spaces",
        "trailing spaces   ",
        "multiple   spaces   between",
        "tabs\tand\t\ttabs",
        "line one\nline two\n\nline four\n",
        "\r\n windows\r\n",
        "    ",
        "\n",
        " ",
        "x \n y",
        "x\t y",
        "3.14159 + 2,718 = 5.85959; 1000000 and 0x1F",
        "٣٤٥ Ⅻ ½ ² 𝟘𝟙",
        "def f(x):\n    return x ** 2  # square\n",
        "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
        "<|endoftext|>",
        "a<|endoftext|>b <|pad|>",
        "日本語のテキストです。",
        "한국어 텍스트",
        "Ελληνικά κείμενα",
        "Привет, мир!",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "e\u0301te\u0301 é",
        "😀👍🏽👨‍👩‍👧🇫🇷",
        "𝐀𝐁𝐂 𝐀𝐁𝐂",
        "𠀀𠀁 ext-B",
        "a\u001Cb\u001Fc\u001D",
        "zero\u200Bwidth\u200D",
        "\uFEFFbom",
        "nul\0byte\0",
        "nbsp\u00A0here \u00A0x",
        "ideographic\u3000space\u2028line\u2029para\u0085nel\u000Bvt\u000Cff",
        "https://example.com/path?q=1&r=2#frag",
        "email@example.org",
        "snake_case_name CamelCaseName kebab-case-name",
        "!!!???... ---===*** $100.00 €50 £30 ¥20",
        " 123 abc123def456",
    ];

    /// <summary>Byte strings that are not valid UTF-8, or are UTF-8 edge cases.</summary>
    public static readonly byte[][] Bytes =
    [
        [],
        [0x00],
        [0xFF],
        [0xFE, 0xFF],
        [0x80, 0x80, 0x41],
        [0xC0, 0xAF],                   // overlong '/'
        [0xE2, 0x82],                   // truncated '€'
        [0xE2, 0x82, 0x41],
        [0xED, 0xA0, 0x80],             // U+D800 as WTF-8 (a lone surrogate)
        [0xED, 0xB0, 0x80, 0x20, 0x61], // U+DC00 as WTF-8, then " a"
        [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80], // a surrogate pair as CESU-8
        [0xF4, 0x90, 0x80, 0x80],       // above U+10FFFF
        [0xF0, 0x9F, 0x98],             // truncated emoji
        [0x20, 0xFF, 0x20, 0x20, 0xFF], // spaces around bad bytes
        [0x27, 0xFF, 0x73],             // apostrophe, bad byte, 's'
        [0x61, 0xC3, 0xA9, 0xFF, 0x31, 0x32, 0xF0, 0x9F, 0x98, 0x80, 0x0A],
    ];

    private static readonly string[] Fragments =
    [
        "a", "Z", "é", "ß", "Ω", "ж", "日", "本", "한", "ا", "क", "ि", "𝐀", "𠀀", "ǅ", "ʰ",
        "the", " the", "hello", " world", "don", "function", "return", "int", "x", "THE",
        "0", "7", "42", "٣", "Ⅻ", "½", "²", "𝟘",
        " ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\u00A0", "\u3000", "\u2028", "\u000B", "\u0085",
        ".", ",", "!", "?", "'", "\"", "-", "_", "(", ")", "{", "}", ";", "<|endoftext|>", "😀", "👍🏽",
        "👨‍👩‍👧", "🇫🇷", "\u0301", "\u200B", "\u200D", "\uFEFF", "\u001C", "\u001F", "\0", "\u007F", "$", "€",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'r",
    ];

    private static readonly byte[][] BadBytes = [[0xFF], [0xC0, 0xAF], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80], [0xF0, 0x9F, 0x98]];

    /// <summary>Seeded random byte strings: fragments of every character class, with invalid bytes
    /// when <paramref name="withInvalidBytes"/>.</summary>
    public static List<byte[]> Random(int seed, int count, bool withInvalidBytes)
    {
        var random = new Random(seed);
        var cases = new List<byte[]>(count);
        for (var c = 0; c < count; c++)
        {
            var bytes = new List<byte>();
            var pieces = random.Next(0, 41);
            for (var p = 0; p < pieces; p++)
            {
                if (withInvalidBytes && random.Next(10) == 0) bytes.AddRange(BadBytes[random.Next(BadBytes.Length)]);
                else bytes.AddRange(Encoding.UTF8.GetBytes(Fragments[random.Next(Fragments.Length)]));
            }
            cases.Add(bytes.ToArray());
        }
        return cases;
    }

    /// <summary>English and code to train merges on: the GPL-3 text plus the hand cases.</summary>
    public static string TrainingCorpus() =>
        ReadLicense("GPL-3") + "\n" + string.Join("\n", Hand) + "\n" + string.Join("\n", Hand.Select(h => h.ToUpperInvariant()));

    /// <summary>About <paramref name="bytes"/> of English: the license texts, repeated.</summary>
    public static string English(int bytes)
    {
        var licenses = string.Join("\n", new[] { "GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "Artistic", "CC0-1.0" }.Select(ReadLicense));
        var text = new StringBuilder(bytes + licenses.Length);
        while (text.Length < bytes) text.Append(licenses).Append('\n');
        return text.ToString(0, bytes);
    }

    private static string ReadLicense(string name)
    {
        var path = Path.Combine(LicenseDirectory, name);
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} is missing: it ships with Debian's base-files package (apt-get install --reinstall base-files)");
        return File.ReadAllText(path);
    }
}
