using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PrefOnline.Learning.Tokenization;

/// <summary>The special tokens a written tokenizer gets, appended after the learned vocabulary in this order:
/// end of sequence, beginning of sequence, padding, then the additional ones.</summary>
/// <param name="EndOfSequence">appended to training completions and the stop token, e.g. "&lt;|endoftext|&gt;".</param>
/// <param name="BeginningOfSequence">when set, the tokenizer declares it is put before every prompt (Llama style).</param>
/// <param name="Padding">when null, batches pad with the end-of-sequence token.</param>
/// <param name="Additional">more special tokens (chat markers, ...), never produced from text.</param>
public sealed record ByteLevelBpeSpecialTokens(
    string EndOfSequence,
    string? BeginningOfSequence = null,
    string? Padding = null,
    IReadOnlyList<string>? Additional = null)
{
    public IReadOnlyList<string> All =>
        [EndOfSequence, .. BeginningOfSequence is null ? [] : new[] { BeginningOfSequence }, .. Padding is null ? [] : new[] { Padding }, .. Additional ?? []];
}

/// <summary>
/// Learns a byte-level BPE on a seed corpus and writes it as a Hugging Face <c>tokenizer.json</c> plus
/// <c>tokenizer_config.json</c>, loadable by <see cref="HuggingFaceBpeTokenizer"/> and by transformers'
/// <c>PreTrainedTokenizerFast</c>. For tests and for small checkpoints made from scratch (<c>prefonline init</c>).
/// </summary>
/// <remarks>
/// Deterministic: GPT-2's pre-tokenization, then repeatedly the most frequent adjacent pair (ties: the pair
/// whose left, then right, token string is smallest in ordinal order), its merge appended and its token
/// added, until the vocabulary (256 byte tokens + merges + special tokens) reaches the size asked for or no
/// pair is left. Ids: the 256 byte tokens in GPT-2's bytes_to_unicode order, then merged tokens, then the
/// special tokens. Training keeps the pair counts up to date word by word, so a few hundred kB and a
/// thousand merges take well under a second.
/// </remarks>
public static class ByteLevelBpeTokenizerWriter
{
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Learns the merges on <paramref name="corpus"/>, writes tokenizer.json and tokenizer_config.json
    /// into <paramref name="directory"/> (created if needed) and returns the tokenizer loaded back from it.</summary>
    /// <param name="vocabularySize">the largest vocabulary wanted, special tokens included (≥ 256 + their count);
    /// a corpus too small for it gives fewer merges.</param>
    public static HuggingFaceBpeTokenizer Write(string directory, int vocabularySize, ByteLevelBpeSpecialTokens specialTokens, string corpus)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(specialTokens);
        ArgumentNullException.ThrowIfNull(corpus);
        var specials = specialTokens.All;
        if (specials.Any(string.IsNullOrEmpty)) throw new ArgumentException("special tokens must not be empty", nameof(specialTokens));
        if (specials.Distinct(StringComparer.Ordinal).Count() != specials.Count) throw new ArgumentException("special tokens must be distinct", nameof(specialTokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 256 + specials.Count);

        var (tokens, merges) = Learn(Encoding.UTF8.GetBytes(corpus), vocabularySize - specials.Count);
        var specialIds = specials.Select((token, i) => (Token: token, Id: tokens.Count + i)).ToList();
        Directory.CreateDirectory(directory);
        TokenizerFiles.WriteAtomically(Path.Combine(directory, TokenizerFiles.FastTokenizer), stream => WriteTokenizerJson(stream, tokens, merges, specialIds, specialTokens.BeginningOfSequence));
        TokenizerFiles.WriteAtomically(Path.Combine(directory, TokenizerFiles.Config), stream => WriteConfig(stream, specialIds, specialTokens));
        return HuggingFaceBpeTokenizer.FromDirectory(directory);
    }

    /// <summary>Token strings (byte symbols) in id order and the merges in rank order.</summary>
    private static (List<string> Tokens, List<(string Left, string Right)> Merges) Learn(byte[] corpus, int maxTokens)
    {
        var tokens = new List<string>(maxTokens);
        var idOfToken = new Dictionary<string, int>(StringComparer.Ordinal);
        var byteOrder = Enumerable.Range(0, 256).OrderBy(b => Gpt2ByteSymbols.OfByte[b] >= 256 ? 1 : 0).ThenBy(b => b);
        foreach (var b in byteOrder) Add(Gpt2ByteSymbols.OfByte[b].ToString());
        int Add(string token)
        {
            if (idOfToken.TryGetValue(token, out var id)) return id;
            idOfToken[token] = tokens.Count;
            tokens.Add(token);
            return tokens.Count - 1;
        }

        // Distinct pre-tokens with their counts, as sequences of token ids.
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var start = 0; start < corpus.Length;)
        {
            var end = Gpt2PreTokenizer.NextEnd(corpus, start);
            var key = Gpt2ByteSymbols.SymbolsOf(corpus.AsSpan(start, end - start));
            counts[key] = counts.GetValueOrDefault(key) + 1;
            start = end;
        }
        var words = counts.Select(kv => (Symbols: kv.Key.Select(c => idOfToken[c.ToString()]).ToList(), Count: (long)kv.Value)).ToList();

        var pairCounts = new Dictionary<(int, int), long>();
        var wordsWithPair = new Dictionary<(int, int), HashSet<int>>();
        void Count(int word, int sign)
        {
            var symbols = words[word].Symbols;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                var pair = (symbols[i], symbols[i + 1]);
                pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + sign * words[word].Count;
                if (sign > 0)
                {
                    if (!wordsWithPair.TryGetValue(pair, out var set)) wordsWithPair[pair] = set = [];
                    set.Add(word);
                }
            }
        }
        for (var w = 0; w < words.Count; w++) Count(w, +1);

        var merges = new List<(string, string)>();
        while (tokens.Count < maxTokens)
        {
            (int Left, int Right)? best = null;
            long bestCount = 0;
            foreach (var (pair, count) in pairCounts)
            {
                if (count <= 0) continue;
                if (best is not { } b || count > bestCount || count == bestCount && Before(pair, b))
                {
                    best = pair;
                    bestCount = count;
                }
            }
            if (best is not { } chosen) break;
            merges.Add((tokens[chosen.Left], tokens[chosen.Right]));
            var merged = Add(tokens[chosen.Left] + tokens[chosen.Right]);
            foreach (var w in wordsWithPair[chosen].ToList())
            {
                Count(w, -1);
                var symbols = words[w].Symbols;
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] != chosen.Left || symbols[i + 1] != chosen.Right) continue;
                    symbols[i] = merged;
                    symbols.RemoveAt(i + 1);
                }
                Count(w, +1);
            }
            pairCounts.Remove(chosen);
        }
        return (tokens, merges);

        bool Before((int Left, int Right) a, (int Left, int Right) b)
        {
            var left = string.CompareOrdinal(tokens[a.Left], tokens[b.Left]);
            return left < 0 || left == 0 && string.CompareOrdinal(tokens[a.Right], tokens[b.Right]) < 0;
        }
    }

    private static void WriteTokenizerJson(Stream stream, List<string> tokens, List<(string Left, string Right)> merges, List<(string Token, int Id)> specials, string? beginningOfSequence)
    {
        using var json = new Utf8JsonWriter(stream, WriterOptions);
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        json.WriteStartArray("added_tokens");
        foreach (var (token, id) in specials)
        {
            json.WriteStartObject();
            json.WriteNumber("id", id);
            json.WriteString("content", token);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("special", true);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNull("normalizer");
        WriteByteLevel(json, "pre_tokenizer", addPrefixSpace: false);
        if (beginningOfSequence is null)
        {
            WriteByteLevel(json, "post_processor", addPrefixSpace: true);
        }
        else
        {
            // Llama 3's form: the beginning-of-sequence token before every sequence.
            var id = specials.First(s => s.Token == beginningOfSequence).Id;
            json.WriteStartObject("post_processor");
            json.WriteString("type", "TemplateProcessing");
            foreach (var (name, sequences) in new[] { ("single", new[] { "A" }), ("pair", new[] { "A", "B" }) })
            {
                json.WriteStartArray(name);
                foreach (var sequence in sequences)
                {
                    json.WriteStartObject();
                    json.WriteStartObject("SpecialToken");
                    json.WriteString("id", beginningOfSequence);
                    json.WriteNumber("type_id", sequence == "A" ? 0 : 1);
                    json.WriteEndObject();
                    json.WriteEndObject();
                    json.WriteStartObject();
                    json.WriteStartObject("Sequence");
                    json.WriteString("id", sequence);
                    json.WriteNumber("type_id", sequence == "A" ? 0 : 1);
                    json.WriteEndObject();
                    json.WriteEndObject();
                }
                json.WriteEndArray();
            }
            json.WriteStartObject("special_tokens");
            json.WriteStartObject(beginningOfSequence);
            json.WriteString("id", beginningOfSequence);
            json.WriteStartArray("ids");
            json.WriteNumberValue(id);
            json.WriteEndArray();
            json.WriteStartArray("tokens");
            json.WriteStringValue(beginningOfSequence);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        WriteByteLevel(json, "decoder", addPrefixSpace: true);
        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        json.WriteNull("unk_token");
        json.WriteNull("continuing_subword_prefix");
        json.WriteNull("end_of_word_suffix");
        json.WriteBoolean("fuse_unk", false);
        json.WriteBoolean("byte_fallback", false);
        json.WriteBoolean("ignore_merges", false);
        json.WriteStartObject("vocab");
        for (var id = 0; id < tokens.Count; id++) json.WriteNumber(tokens[id], id);
        json.WriteEndObject();
        // tokenizers ≥ 0.20 writes each merge as a two-element array.
        json.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            json.WriteStartArray();
            json.WriteStringValue(left);
            json.WriteStringValue(right);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter json, string name, bool addPrefixSpace)
    {
        json.WriteStartObject(name);
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", addPrefixSpace);
        json.WriteBoolean("trim_offsets", true);
        json.WriteBoolean("use_regex", true);
        json.WriteEndObject();
    }

    private static void WriteConfig(Stream stream, List<(string Token, int Id)> specials, ByteLevelBpeSpecialTokens names)
    {
        using var json = new Utf8JsonWriter(stream, WriterOptions);
        json.WriteStartObject();
        json.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        json.WriteString("eos_token", names.EndOfSequence);
        if (names.BeginningOfSequence is { } bos) json.WriteString("bos_token", bos);
        else json.WriteNull("bos_token");
        json.WriteBoolean("add_bos_token", names.BeginningOfSequence is not null);
        if (names.Padding is { } pad) json.WriteString("pad_token", pad);
        else json.WriteNull("pad_token");
        json.WriteBoolean("clean_up_tokenization_spaces", false);
        json.WriteStartObject("added_tokens_decoder");
        foreach (var (token, id) in specials)
        {
            json.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("content", token);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("special", true);
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
