using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>Small GPT-2-format vocabularies built in C#: the 256 byte symbols in GPT-2's order, the merge
/// results, then &lt;|endoftext|&gt;; and their vocab.json / merges.txt files.</summary>
internal static class HandVocabulary
{
    public static readonly string[] ByteSymbols = BuildByteSymbols();

    public static Dictionary<string, int> Vocabulary(IEnumerable<(string Left, string Right)> merges, bool withEndOfText = true)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var symbol in ByteSymbols) vocabulary[symbol] = vocabulary.Count;
        foreach (var (left, right) in merges) vocabulary.TryAdd(left + right, vocabulary.Count);
        if (withEndOfText) vocabulary["<|endoftext|>"] = vocabulary.Count;
        return vocabulary;
    }

    public static Gpt2BpeTokenizer Tokenizer(params (string Left, string Right)[] merges) => new(Vocabulary(merges), merges);

    /// <summary>Writes vocab.json and merges.txt as GPT-2 ships them.</summary>
    public static void Write(string directory, IReadOnlyList<(string Left, string Right)> merges)
    {
        var vocabulary = Vocabulary(merges);
        File.WriteAllText(Path.Combine(directory, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocabulary));
        File.WriteAllText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n" + string.Concat(merges.Select(m => $"{m.Left} {m.Right}\n")));
    }

    private static string[] BuildByteSymbols()
    {
        // bytes_to_unicode: printable Latin-1 first (in byte order), then the rest mapped to U+0100.. .
        var printable = Enumerable.Range(0, 256).Where(b => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF).ToList();
        var symbols = printable.Select(b => ((char)b).ToString()).ToList();
        var next = 256;
        var byByte = new string[256];
        foreach (var b in printable) byByte[b] = ((char)b).ToString();
        for (var b = 0; b < 256; b++) byByte[b] ??= ((char)next++).ToString();
        // Order as GPT-2's vocab: printable bytes, then the remapped ones in byte order.
        return printable.Select(b => byByte[b]).Concat(Enumerable.Range(0, 256).Where(b => !printable.Contains(b)).Select(b => byByte[b])).ToArray();
    }
}
