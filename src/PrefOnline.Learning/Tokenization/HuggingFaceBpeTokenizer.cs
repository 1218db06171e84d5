using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Microsoft.ML.Tokenizers;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// A Hugging Face byte-level BPE <c>tokenizer.json</c> (GPT-2, Llama 3, Qwen2/3, SmolLM), encoded by
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (byte-level mode) after this project's
/// pre-tokenization (<see cref="ByteLevelPreTokenizer"/>, the file's own regexes). Special tokens and the
/// end-of-sequence id come from the checkpoint's files; see <see cref="FromDirectory"/> for the precedence.
/// docs/ARCHITECTURE.md says why this library (measured against Tokenizers.DotNet).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Special added tokens are never produced by Encode (text spelling "&lt;|eot_id|&gt;" stays text, so
///   users cannot inject control tokens; see <see cref="ITokenizer"/>) and are dropped by Decode.
///   Non-special added tokens (Qwen's &lt;think&gt;) are matched in text first, as Hugging Face does.</item>
/// <item>Invalid UTF-8 (EncodeBytes only; a string has none): each byte of a maximal invalid subsequence
///   is its own single-byte token, and the valid text on either side is encoded separately. So any byte
///   string round-trips; Hugging Face cannot encode such input at all (its API takes str).</item>
/// <item>Decoding is this class's own byte table (token string → bytes through GPT-2's byte symbols), not
///   the library's: the sampler needs each token's exact bytes, and a completion cut mid-character
///   must decode to those bytes, not to U+FFFD. <see cref="Decode"/> turns invalid UTF-8 into U+FFFD
///   (one per maximal invalid subsequence, as Python's errors="replace").</item>
/// <item>NFC normalizer (Qwen2/3): not applied. The process runs with invariant globalization, where .NET's
///   string.Normalize returns its input unchanged (HuggingFaceBpeTokenizerTests pins that); text that is already NFC
///   (nearly all) gets Hugging Face's ids, decomposed text is encoded as written, which keeps Decode(Encode(text)) == text.</item>
/// <item>Pre-tokens longer than <see cref="LongPieceBytes"/> (a run of one script without spaces, a pasted blob) are
///   merged by <see cref="BpeMergeTable"/>, the project's O(n log n) merge loop, with the same ranks: the library's
///   merge loop is quadratic in the piece (100,000 CJK characters in one piece took 20 s), which user text must not
///   be able to trigger. Both give the same ids (the tests compare them).</item>
/// </list>
/// Immutable and thread-safe (the library's BPE cache is concurrent).
/// </remarks>
public sealed class HuggingFaceBpeTokenizer : ITokenizer
{
    /// <summary>Pre-tokens with more UTF-8 bytes than this go through <see cref="BpeMergeTable"/> instead of the library.</summary>
    public const int LongPieceBytes = 256;

    private readonly BpeTokenizer bpe;
    private readonly BpeMergeTable mergeTable;
    private readonly ByteLevelPreTokenizer preTokenizer;
    private readonly Dictionary<string, int> idByToken;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> idLookup;
    private readonly byte[]?[] bytesById;   // null: a special token, or an unused id
    private readonly bool[] usedIds;
    private readonly bool ignoreMerges;
    private readonly (string Content, int Id)[] textAddedTokens; // non-special added tokens, longest first
    private readonly Dictionary<string, byte[]> files;           // file name → bytes, written back by Save
    private readonly Dictionary<int, string> specialTexts;       // special added token id → its content

    private HuggingFaceBpeTokenizer(
        TokenizerJsonFile json,
        string jsonPath,
        TokenizerFiles.ConfigFile? config,
        string? configPath,
        IReadOnlyList<(string Path, TokenizerFiles.ModelTokenIds Ids)> modelIds,
        Dictionary<string, byte[]> files)
    {
        this.files = files;
        ignoreMerges = json.IgnoreMerges;
        preTokenizer = new ByteLevelPreTokenizer(json.PreTokenizerSteps);

        idByToken = new Dictionary<string, int>(json.Vocabulary.Count + json.AddedTokens.Count, StringComparer.Ordinal);
        idLookup = idByToken.GetAlternateLookup<ReadOnlySpan<char>>();
        var tokenOfId = new Dictionary<int, string>();
        foreach (var (token, id) in json.Vocabulary)
        {
            if (!tokenOfId.TryAdd(id, token)) throw Error(jsonPath, $"model.vocab: {TokenizerFiles.Quote(tokenOfId[id])} and {TokenizerFiles.Quote(token)} share id {id}");
            idByToken[token] = id;
        }
        var modelVocabulary = idByToken.ToList();

        var special = new HashSet<int>();
        var textAdded = new List<(string, int)>();
        void Add(string content, int id, bool isSpecial, string source)
        {
            if (idByToken.TryGetValue(content, out var existing) && existing != id)
                throw Error(source, $"added token {TokenizerFiles.Quote(content)} has id {id} but the vocabulary gives it {existing}");
            if (tokenOfId.TryGetValue(id, out var owner) && owner != content)
                throw Error(source, $"added token {TokenizerFiles.Quote(content)} takes id {id} of {TokenizerFiles.Quote(owner)}");
            tokenOfId[id] = content;
            idByToken[content] = id;
            if (isSpecial) special.Add(id);
            else if (!textAdded.Contains((content, id))) textAdded.Add((content, id));
        }
        foreach (var token in json.AddedTokens) Add(token.Content, token.Id, token.Special, jsonPath);
        // added_tokens_decoder repeats tokenizer.json's added tokens; one it alone names is a special token too.
        foreach (var (id, content) in config?.AddedTokens ?? [])
            if (!tokenOfId.ContainsKey(id)) Add(content, id, isSpecial: true, configPath!);
        textAddedTokens = textAdded.OrderByDescending(t => t.Item1.Length).ToArray();

        VocabularySize = tokenOfId.Keys.Max() + 1;
        usedIds = new bool[VocabularySize];
        foreach (var id in tokenOfId.Keys) usedIds[id] = true;

        var byteIds = new int[256];
        for (var b = 0; b < 256; b++)
        {
            var symbol = Gpt2ByteSymbols.OfByte[b].ToString();
            if (!idByToken.TryGetValue(symbol, out byteIds[b]) || special.Contains(byteIds[b]))
                throw Error(jsonPath, $"model.vocab lacks the single-byte token {TokenizerFiles.Quote(symbol)} (byte 0x{b:X2}); a byte-level BPE needs all 256 to encode any text");
        }
        ByteIds = byteIds;

        bytesById = new byte[]?[VocabularySize];
        foreach (var (id, token) in tokenOfId)
        {
            if (special.Contains(id)) continue;
            // A non-special added token decodes to its text, as in Hugging Face; a vocabulary entry to its bytes.
            bytesById[id] = textAdded.Contains((token, id)) ? Encoding.UTF8.GetBytes(token) : Gpt2ByteSymbols.BytesOf(token);
        }

        var ranks = new Dictionary<long, BpeMergeTable.Merge>(json.Merges.Count);
        for (var rank = 0; rank < json.Merges.Count; rank++)
        {
            var merge = json.Merges[rank];
            var space = merge.IndexOf(' ');
            var (left, right) = (merge[..space], merge[(space + 1)..]);
            foreach (var part in new[] { left, right, left + right })
            {
                if (!idByToken.ContainsKey(part))
                    throw Error(jsonPath, $"model.merges: {TokenizerFiles.Quote(merge)} uses {TokenizerFiles.Quote(part)}, which is not in model.vocab");
            }
            // A repeated pair takes its last rank, as in Hugging Face.
            ranks[BpeMergeTable.Key(idByToken[left], idByToken[right])] = new BpeMergeTable.Merge(rank, idByToken[left + right]);
        }
        mergeTable = new BpeMergeTable(ranks);
        bpe = BpeTokenizer.Create(new BpeOptions(modelVocabulary) { Merges = json.Merges, ByteLevel = true });

        int IdOfNamed(string token, string source, string key) =>
            idByToken.TryGetValue(token, out var id) ? id : throw Error(source, $"{key} {TokenizerFiles.Quote(token)} is not a token of tokenizer.json");
        int Checked(int id, string source, string key) =>
            id < VocabularySize && usedIds[id] ? id : throw Error(source, $"{key} {id} is not a token of tokenizer.json (vocabulary size {VocabularySize})");

        // End of sequence: the tokenizer's own eos_token, else the model's first eos_token_id.
        var modelEos = modelIds.SelectMany(m => m.Ids.EndOfSequence.Select(id => Checked(id, m.Path, "eos_token_id"))).ToList();
        if (config?.EndOfSequenceToken is { } eosToken) EndOfSequenceId = IdOfNamed(eosToken, configPath!, "eos_token");
        else if (modelEos.Count > 0) EndOfSequenceId = modelEos[0];
        else throw Error(configPath ?? jsonPath, "names no end-of-sequence token (tokenizer_config.json eos_token, or eos_token_id in generation_config.json or config.json); generation needs one");
        StopIds = [.. new[] { EndOfSequenceId }.Concat(modelEos).Distinct()];
        if (bytesById[EndOfSequenceId] is not null && !special.Contains(EndOfSequenceId))
            throw Error(configPath ?? jsonPath, $"the end-of-sequence token (id {EndOfSequenceId}) is not a special added token; Decode would print it as text");

        if (config?.PaddingToken is { } padToken) PaddingId = IdOfNamed(padToken, configPath!, "pad_token");
        else PaddingId = modelIds.Select(m => m.Ids.Padding is { } pad ? Checked(pad, m.Path, "pad_token_id") : (int?)null).FirstOrDefault(p => p is not null) ?? EndOfSequenceId;

        // Beginning of sequence: tokenizer_config's add_bos_token decides when it says; else the post-processor's template.
        if (config?.AddBeginningOfSequence == true)
            BeginningOfSequenceId = config.BeginningOfSequenceToken is { } bos ? IdOfNamed(bos, configPath!, "bos_token") : throw Error(configPath!, "add_bos_token is true but bos_token is missing");
        else if (config?.AddBeginningOfSequence != false && json.PostProcessorFirstToken is { } first)
            BeginningOfSequenceId = IdOfNamed(first, jsonPath, "post_processor's first special token");

        SpecialIds = [.. special.Order()];
        specialTexts = special.ToDictionary(id => id, id => tokenOfId[id]);
    }

    /// <summary>Loads tokenizer.json and, when present, tokenizer_config.json (eos_token, pad_token, bos_token,
    /// add_bos_token, added_tokens_decoder), generation_config.json and config.json (eos_token_id: an integer or
    /// a list; pad_token_id).</summary>
    /// <remarks>
    /// End of sequence (appended to training completions, what a stop is reported as): tokenizer_config.json's
    /// eos_token, else the first eos_token_id of generation_config.json, else of config.json.
    /// <see cref="StopIds"/>: that id plus every eos_token_id of both files (Llama 3 Instruct: 128001, 128008, 128009).
    /// Padding: pad_token, else pad_token_id, else the end-of-sequence id.
    /// </remarks>
    /// <exception cref="TokenizerFormatException">A file is malformed, not a byte-level BPE, or the files disagree.</exception>
    public static HuggingFaceBpeTokenizer FromDirectory(string directory)
    {
        string In(string name) => Path.Combine(directory, name);
        var jsonPath = In(TokenizerFiles.FastTokenizer);
        var json = TokenizerJsonFile.Read(jsonPath);
        var files = new Dictionary<string, byte[]> { [TokenizerFiles.FastTokenizer] = File.ReadAllBytes(jsonPath) };

        TokenizerFiles.ConfigFile? config = null;
        var configPath = In(TokenizerFiles.Config);
        if (File.Exists(configPath))
        {
            config = TokenizerFiles.ReadConfig(configPath);
            if (config.TokenizerClass == ByteTokenizer.ConfigClassName)
                throw new TokenizerFormatException(configPath, null, $"names {ByteTokenizer.ConfigClassName} but the directory holds a tokenizer.json; remove one or the other");
            files[TokenizerFiles.Config] = File.ReadAllBytes(configPath);
        }
        if (File.Exists(In(TokenizerFiles.SpecialTokensMap))) files[TokenizerFiles.SpecialTokensMap] = File.ReadAllBytes(In(TokenizerFiles.SpecialTokensMap));

        var modelIds = new List<(string, TokenizerFiles.ModelTokenIds)>();
        foreach (var name in new[] { TokenizerFiles.GenerationConfig, TokenizerFiles.ModelConfig })
        {
            if (!File.Exists(In(name))) continue;
            modelIds.Add((In(name), TokenizerFiles.ReadModelTokenIds(In(name))));
            // generation_config.json travels with the tokenizer: its eos ids are the stop ids. config.json is the model's.
            if (name == TokenizerFiles.GenerationConfig) files[name] = File.ReadAllBytes(In(name));
        }
        return new HuggingFaceBpeTokenizer(json, jsonPath, config, File.Exists(configPath) ? configPath : null, modelIds, files);
    }

    public int VocabularySize { get; }

    public int EndOfSequenceId { get; }

    public int PaddingId { get; }

    public IReadOnlyList<int> StopIds { get; }

    public int? BeginningOfSequenceId { get; }

    /// <summary>Ids of the special added tokens (never encoded from text, dropped by Decode), ascending.</summary>
    public IReadOnlyList<int> SpecialIds { get; }

    /// <summary>The id of each byte's single-byte token.</summary>
    internal IReadOnlyList<int> ByteIds { get; }

    public string? SpecialTokenText(int id) => specialTexts.GetValueOrDefault(id);

    /// <summary>The id of a token string (byte symbols, e.g. "Ġthe", or an added token's content), or null.</summary>
    public int? IdOf(string token) => idByToken.TryGetValue(token, out var id) ? id : null;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // A lone surrogate has no UTF-8 form: U+FFFD, as Encoding.UTF8 does for the other tokenizers.
        if (Utf16HasLoneSurrogate(text)) text = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text));
        var ids = new List<int>(text.Length / 3 + 8);
        EncodeValid(text, ids);
        return ids.ToArray();
    }

    public int[] EncodeBytes(ReadOnlySpan<byte> utf8)
    {
        var ids = new List<int>(utf8.Length / 3 + 8);
        var chars = ArrayPool<char>.Shared.Rent(utf8.Length);
        try
        {
            while (!utf8.IsEmpty)
            {
                // The longest valid prefix as text, then the maximal invalid subsequence byte by byte.
                var status = Utf8.ToUtf16(utf8, chars, out var read, out var written, replaceInvalidSequences: false, isFinalBlock: true);
                if (written > 0) EncodeValid(new string(chars, 0, written), ids);
                utf8 = utf8[read..];
                if (status == OperationStatus.Done) break;
                Rune.DecodeFromUtf8(utf8, out _, out var invalid);
                foreach (var b in utf8[..invalid]) ids.Add(ByteIds[b]);
                utf8 = utf8[invalid..];
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var count = 0;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)VocabularySize || !usedIds[id])
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id {id} is not in the vocabulary (size {VocabularySize})");
            count += bytesById[id]?.Length ?? 0;
        }
        var result = new byte[count];
        var at = 0;
        foreach (var id in ids)
        {
            if (bytesById[id] is not { } bytes) continue;
            bytes.CopyTo(result, at);
            at += bytes.Length;
        }
        return result;
    }

    /// <summary>Writes the files it was loaded from (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
    /// generation_config.json) byte for byte, so a saved checkpoint carries the model's exact tokenizer,
    /// chat template included, and loads back to the same ids.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var stale in new[] { TokenizerFiles.Vocabulary, TokenizerFiles.Merges, TokenizerFiles.AddedTokens, TokenizerFiles.Config, TokenizerFiles.SpecialTokensMap })
        {
            // Leftovers of another tokenizer would contradict this one (a byte tokenizer's config is refused beside tokenizer.json).
            if (!files.ContainsKey(stale)) File.Delete(Path.Combine(directory, stale));
        }
        foreach (var (name, bytes) in files)
            TokenizerFiles.WriteAtomically(Path.Combine(directory, name), stream => stream.Write(bytes));
    }

    /// <summary>Non-special added tokens first (leftmost, longest), then the pre-tokenizer's pieces through the BPE.</summary>
    private void EncodeValid(string text, List<int> ids)
    {
        var at = 0;
        while (textAddedTokens.Length > 0 && at < text.Length)
        {
            var (found, length, id) = (-1, 0, 0);
            foreach (var (content, tokenId) in textAddedTokens)
            {
                var index = text.IndexOf(content, at, StringComparison.Ordinal);
                if (index >= 0 && (found < 0 || index < found)) (found, length, id) = (index, content.Length, tokenId);
            }
            if (found < 0) break;
            EncodeSegment(text, at, found - at, ids);
            ids.Add(id);
            at = found + length;
        }
        EncodeSegment(text, at, text.Length - at, ids);
    }

    private void EncodeSegment(string text, int start, int length, List<int> ids)
    {
        if (length == 0) return;
        var segment = start == 0 && length == text.Length ? text : text.Substring(start, length);
        Span<char> symbols = stackalloc char[256];
        foreach (var (pieceStart, pieceLength) in preTokenizer.Split(segment))
        {
            var piece = segment.AsSpan(pieceStart, pieceLength);
            // ignore_merges (Llama 3, as tiktoken): a pre-token that is itself in the vocabulary is that token.
            if (ignoreMerges && Encoding.UTF8.GetMaxByteCount(piece.Length) <= symbols.Length && ByteSymbolsOf(piece, symbols) is var key && idLookup.TryGetValue(key, out var whole))
            {
                ids.Add(whole);
                continue;
            }
            if (piece.Length * 3 > LongPieceBytes && Encoding.UTF8.GetByteCount(piece) > LongPieceBytes) MergeLong(piece, ids);
            else ids.AddRange(bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
        }
    }

    private void MergeLong(ReadOnlySpan<char> piece, List<int> ids)
    {
        var bytes = Encoding.UTF8.GetBytes(piece.ToArray());
        var merged = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) merged[i] = ByteIds[bytes[i]];
        ids.AddRange(merged.AsSpan(0, mergeTable.Apply(merged)));
    }

    private static ReadOnlySpan<char> ByteSymbolsOf(ReadOnlySpan<char> text, Span<char> buffer)
    {
        Span<byte> bytes = stackalloc byte[buffer.Length];
        var count = Encoding.UTF8.GetBytes(text, bytes);
        for (var i = 0; i < count; i++) buffer[i] = Gpt2ByteSymbols.OfByte[bytes[i]];
        return buffer[..count];
    }

    private static bool Utf16HasLoneSurrogate(string text) =>
        text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0 && Utf16.IsValid(text) is false;

    private static TokenizerFormatException Error(string path, string problem) => new(path, null, problem);
}

/// <summary>UTF-16 validity (no lone surrogate), which System.Text.Unicode lacks as a one-call check.</summary>
file static class Utf16
{
    public static bool IsValid(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return false;
        }
        return true;
    }
}
