using System.Buffers;
using System.Text;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE (OpenAI's encoder.py, Hugging Face's GPT2Tokenizer) from vocab.json and
/// merges.txt: the text's UTF-8 is split by GPT-2's pre-tokenization regex, each piece's bytes become
/// byte symbols (<c>bytes_to_unicode</c>), and merges are applied by rank. Token for token identical
/// to encoder.py on valid UTF-8; invalid bytes are encoded too (each as a non-letter, non-digit,
/// non-space character, see <see cref="Gpt2PreTokenizer"/>), so any byte string round-trips.
/// </summary>
/// <remarks>
/// End of sequence is &lt;|endoftext|&gt; (50256 in GPT-2) unless tokenizer_config.json names another;
/// padding is the configured pad token, else the end-of-sequence token, as Hugging Face does for GPT-2.
/// Special-token strings inside the text are encoded as plain text (see <see cref="ITokenizer"/>).
/// Special tokens (end of sequence, padding, added tokens) and vocabulary entries that are not made
/// of byte symbols are dropped by Decode. Thread-safe: the only mutable state is a bounded cache of
/// pre-token → ids (behind a lock, cleared when full; only pieces that merges shortened are kept).
/// Speed: about 0.1 s per MiB of English on this project's 2-core machine, cold cache included.
/// </remarks>
public sealed class Gpt2BpeTokenizer : ITokenizer
{
    public const string DefaultEndOfSequenceToken = "<|endoftext|>";

    /// <summary>Pre-tokens remembered (English text needs a few tens of thousands for a high hit rate).</summary>
    public const int DefaultCacheCapacity = 65_536;

    /// <summary>Longer pre-tokens (whitespace runs, long identifiers) are not cached: rare and large.</summary>
    private const int MaxCachedPreTokenBytes = 128;

    private readonly Dictionary<string, int> idByToken;
    private readonly string?[] tokenById;
    private readonly HashSet<int> specialIds = []; // end of sequence, padding and the added tokens: dropped by Decode
    private readonly byte[]?[] bytesById;       // null for special and non-byte tokens
    private readonly int[] byteIds = new int[256]; // id of the single-byte token of each byte value
    private readonly BpeMergeTable mergeTable;
    private readonly List<(string Left, string Right)> merges;
    private readonly List<KeyValuePair<string, int>> addedTokens;
    private readonly Dictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> cacheLookup;
    private readonly Lock cacheLock = new();
    private readonly int cacheCapacity;

    /// <summary>Builds the tokenizer from an in-memory vocabulary and merge list (highest priority first).</summary>
    /// <param name="vocabulary">token string (byte symbols) → id; must hold all 256 single-byte tokens.</param>
    /// <param name="merges">pairs of tokens; each part and their concatenation must be in the vocabulary.
    /// A repeated pair takes the rank of its last occurrence, as in Hugging Face.</param>
    /// <param name="endOfSequenceToken">must be in the vocabulary or the added tokens.</param>
    /// <param name="paddingToken">null: pad with the end-of-sequence token.</param>
    /// <param name="addedTokens">special tokens beyond vocab.json (added_tokens.json).</param>
    /// <exception cref="ArgumentException">The pieces do not make a lossless byte-level BPE.</exception>
    public Gpt2BpeTokenizer(
        IReadOnlyDictionary<string, int> vocabulary,
        IReadOnlyList<(string Left, string Right)> merges,
        string endOfSequenceToken = DefaultEndOfSequenceToken,
        string? paddingToken = null,
        IReadOnlyDictionary<string, int>? addedTokens = null,
        int cacheCapacity = DefaultCacheCapacity)
        : this(
            vocabulary.Select(kv => (kv.Key, kv.Value, 0)).ToList(),
            merges.Select((m, i) => (m.Left, m.Right, i + 1)).ToList(),
            endOfSequenceToken,
            paddingToken,
            (addedTokens ?? new Dictionary<string, int>()).Select(kv => (kv.Key, kv.Value, 0, TokenizerFiles.AddedTokens)).ToList(),
            cacheCapacity,
            (source, line, problem) => new ArgumentException(source == TokenizerFiles.Merges ? $"merge #{line}: {problem}" : problem))
    {
    }

    private Gpt2BpeTokenizer(
        List<(string Token, int Id, int Line)> vocabulary,
        List<(string Left, string Right, int Line)> mergeLines,
        string endOfSequenceToken,
        string? paddingToken,
        List<(string Token, int Id, int Line, string Source)> added,
        int cacheCapacity,
        Func<string, int?, string, Exception> error)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cacheCapacity);
        this.cacheCapacity = cacheCapacity;
        cacheLookup = cache.GetAlternateLookup<ReadOnlySpan<char>>();

        idByToken = new Dictionary<string, int>(vocabulary.Count + added.Count, StringComparer.Ordinal);
        var maxId = -1;
        var seenIds = new Dictionary<int, string>();
        foreach (var (token, id, line) in vocabulary)
        {
            if (id < 0 || id > TokenizerFiles.MaxTokenId) throw error(TokenizerFiles.Vocabulary, line, $"token {TokenizerFiles.Quote(token)} has id {id}, outside 0..{TokenizerFiles.MaxTokenId}");
            if (!seenIds.TryAdd(id, token)) throw error(TokenizerFiles.Vocabulary, line, $"tokens {TokenizerFiles.Quote(seenIds[id])} and {TokenizerFiles.Quote(token)} share id {id}");
            if (!idByToken.TryAdd(token, id)) throw error(TokenizerFiles.Vocabulary, line, $"token {TokenizerFiles.Quote(token)} appears twice");
            maxId = Math.Max(maxId, id);
        }

        // Added tokens may repeat a vocabulary entry (Hugging Face lists <|endoftext|> there too); a
        // different id for the same string, or a taken id, is a conflict.
        addedTokens = [];
        foreach (var (token, id, line, source) in added)
        {
            if (idByToken.TryGetValue(token, out var existing))
            {
                if (existing != id) throw error(source, line, $"added token {TokenizerFiles.Quote(token)} has id {id} but vocab.json gives it {existing}");
            }
            else
            {
                if (id < 0 || id > TokenizerFiles.MaxTokenId) throw error(source, line, $"added token {TokenizerFiles.Quote(token)} has id {id}, outside 0..{TokenizerFiles.MaxTokenId}");
                if (seenIds.TryGetValue(id, out var owner)) throw error(source, line, $"added token {TokenizerFiles.Quote(token)} takes id {id} of {TokenizerFiles.Quote(owner)}");
                seenIds.Add(id, token);
                idByToken.Add(token, id);
                addedTokens.Add(new(token, id));
                maxId = Math.Max(maxId, id);
            }
            specialIds.Add(id);
        }

        VocabularySize = maxId + 1;
        tokenById = new string?[VocabularySize];
        foreach (var (token, id) in idByToken) tokenById[id] = token;

        for (var b = 0; b < 256; b++)
        {
            var symbol = Gpt2ByteSymbols.OfByte[b].ToString();
            if (!idByToken.TryGetValue(symbol, out byteIds[b]))
                throw error(TokenizerFiles.Vocabulary, null, $"lacks the single-byte token {TokenizerFiles.Quote(symbol)} (byte 0x{b:X2}); a byte-level BPE needs all 256 to encode any text");
        }

        EndOfSequenceToken = endOfSequenceToken;
        EndOfSequenceId = idByToken.TryGetValue(endOfSequenceToken, out var eos)
            ? eos
            : throw error(TokenizerFiles.Vocabulary, null, $"has no end-of-sequence token {TokenizerFiles.Quote(endOfSequenceToken)}");
        PaddingToken = paddingToken ?? endOfSequenceToken;
        PaddingId = idByToken.TryGetValue(PaddingToken, out var pad)
            ? pad
            : throw error(TokenizerFiles.Vocabulary, null, $"has no padding token {TokenizerFiles.Quote(PaddingToken)} (named by tokenizer_config.json; added_tokens.json may be missing)");
        specialIds.Add(EndOfSequenceId);
        specialIds.Add(PaddingId);
        for (var b = 0; b < 256; b++)
        {
            if (specialIds.Contains(byteIds[b]))
                throw error(TokenizerFiles.Vocabulary, null, $"special token {TokenizerFiles.Quote(tokenById[byteIds[b]]!)} is also the token of byte 0x{b:X2}; Decode drops special tokens, so text would be lost");
        }

        bytesById = new byte[]?[VocabularySize];
        foreach (var (token, id) in idByToken)
            if (!specialIds.Contains(id)) bytesById[id] = Gpt2ByteSymbols.BytesOf(token);

        var table = new Dictionary<long, BpeMergeTable.Merge>(mergeLines.Count);
        var rankByPair = new Dictionary<(string, string), int>();
        for (var rank = 0; rank < mergeLines.Count; rank++)
        {
            var (left, right, line) = mergeLines[rank];
            var merged = left + right;
            if (!idByToken.TryGetValue(left, out var leftId) || !idByToken.TryGetValue(right, out var rightId) || !idByToken.TryGetValue(merged, out var mergedId))
            {
                var missing = !idByToken.ContainsKey(left) ? left : !idByToken.ContainsKey(right) ? right : merged;
                throw error(TokenizerFiles.Merges, line, $"merge {TokenizerFiles.Quote(left + " " + right)} uses {TokenizerFiles.Quote(missing)}, which is not in vocab.json");
            }
            if (specialIds.Contains(mergedId) || specialIds.Contains(leftId) || specialIds.Contains(rightId))
                throw error(TokenizerFiles.Merges, line, $"merge {TokenizerFiles.Quote(left + " " + right)} involves a special token");
            table[BpeMergeTable.Key(leftId, rightId)] = new BpeMergeTable.Merge(rank, mergedId);
            rankByPair[(left, right)] = rank;
        }
        mergeTable = new BpeMergeTable(table);
        // Kept for Save: each distinct pair once, at its effective (last) rank.
        merges = rankByPair.OrderBy(kv => kv.Value).Select(kv => kv.Key).ToList();
    }

    /// <summary>Loads vocab.json and merges.txt with GPT-2's defaults (end of sequence and padding = &lt;|endoftext|&gt;).</summary>
    /// <exception cref="TokenizerFormatException">A file is missing, malformed, or the two do not fit.</exception>
    public static Gpt2BpeTokenizer FromFiles(string vocabularyPath, string mergesPath, int cacheCapacity = DefaultCacheCapacity) =>
        Load(vocabularyPath, mergesPath, config: null, addedTokensPath: null, cacheCapacity);

    /// <summary>Loads a Hugging Face GPT-2 tokenizer directory: vocab.json, merges.txt, and when present
    /// tokenizer_config.json (eos_token, pad_token, added_tokens_decoder) and added_tokens.json.</summary>
    /// <exception cref="TokenizerFormatException">A file is missing, malformed, or the files do not fit.</exception>
    public static Gpt2BpeTokenizer FromDirectory(string directory, int cacheCapacity = DefaultCacheCapacity)
    {
        var configPath = Path.Combine(directory, TokenizerFiles.Config);
        var addedPath = Path.Combine(directory, TokenizerFiles.AddedTokens);
        return Load(
            Path.Combine(directory, TokenizerFiles.Vocabulary),
            Path.Combine(directory, TokenizerFiles.Merges),
            File.Exists(configPath) ? (configPath, TokenizerFiles.ReadConfig(configPath)) : null,
            File.Exists(addedPath) ? addedPath : null,
            cacheCapacity);
    }

    private static Gpt2BpeTokenizer Load(string vocabularyPath, string mergesPath, (string Path, TokenizerFiles.ConfigFile File)? config, string? addedTokensPath, int cacheCapacity)
    {
        foreach (var required in new[] { vocabularyPath, mergesPath })
            if (!File.Exists(required)) throw new TokenizerFormatException(required, null, "missing (a GPT-2 BPE tokenizer needs vocab.json and merges.txt)");

        var eos = DefaultEndOfSequenceToken;
        string? pad = null;
        var added = new List<(string, int, int, string)>();
        if (config is var (configPath, file))
        {
            if (file.TokenizerClass == ByteTokenizer.ConfigClassName)
                throw new TokenizerFormatException(configPath, null, $"names {ByteTokenizer.ConfigClassName} but the directory holds vocab.json and merges.txt; remove one or the other");
            if (file.AddPrefixSpace)
                throw new TokenizerFormatException(configPath, null, "add_prefix_space is true, which this tokenizer does not implement (GPT-2 uses false)");
            if (file.EndOfSequenceIsNull)
                throw new TokenizerFormatException(configPath, null, "eos_token is null; generation needs an end-of-sequence token");
            eos = file.EndOfSequenceToken ?? eos;
            pad = file.PaddingToken;
            added.AddRange(file.AddedTokens.Select(t => (t.Content, t.Id, 0, TokenizerFiles.Config)));
        }
        if (addedTokensPath is not null) added.AddRange(TokenizerFiles.ReadTokenIds(addedTokensPath).Select(t => (t.Token, t.Id, t.Line, TokenizerFiles.AddedTokens)));

        var sources = new Dictionary<string, string>
        {
            [TokenizerFiles.Vocabulary] = vocabularyPath,
            [TokenizerFiles.Merges] = mergesPath,
            [TokenizerFiles.AddedTokens] = addedTokensPath ?? vocabularyPath,
            [TokenizerFiles.Config] = config?.Path ?? vocabularyPath,
        };
        return new Gpt2BpeTokenizer(
            TokenizerFiles.ReadTokenIds(vocabularyPath),
            TokenizerFiles.ReadMerges(mergesPath),
            eos,
            pad,
            added,
            cacheCapacity,
            (source, line, problem) => new TokenizerFormatException(sources[source], line is > 0 ? line : null, problem));
    }

    public int VocabularySize { get; }

    public int EndOfSequenceId { get; }

    public int PaddingId { get; }

    public string? SpecialTokenText(int id) => specialIds.Contains(id) ? tokenById[id] : null;

    public string EndOfSequenceToken { get; }

    public string PaddingToken { get; }

    /// <summary>Number of distinct merges.</summary>
    public int MergeCount => merges.Count;

    /// <summary>The id of a token string (byte symbols, e.g. "Ġthe"), or null.</summary>
    public int? IdOf(string token) => idByToken.TryGetValue(token, out var id) ? id : null;

    /// <summary>The token string of an id (byte symbols, e.g. "Ġthe"), or null for an unused id.</summary>
    public string? TokenOf(int id) => (uint)id < (uint)tokenById.Length ? tokenById[id] : null;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Encoding.UTF8 turns a lone surrogate into U+FFFD rather than throwing.
        var length = Encoding.UTF8.GetMaxByteCount(text.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = Encoding.UTF8.GetBytes(text, rented);
            return EncodeBytes(rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public int[] EncodeBytes(ReadOnlySpan<byte> utf8)
    {
        var ids = new List<int>(utf8.Length / 3 + 8);
        Span<char> symbols = stackalloc char[MaxCachedPreTokenBytes];
        var start = 0;
        while (start < utf8.Length)
        {
            var end = Gpt2PreTokenizer.NextEnd(utf8, start);
            var piece = utf8[start..end];
            start = end;

            if (piece.Length == 1)
            {
                ids.Add(byteIds[piece[0]]);
                continue;
            }
            if (piece.Length > MaxCachedPreTokenBytes)
            {
                ids.AddRange(Merge(piece));
                continue;
            }

            var key = symbols[..piece.Length];
            for (var i = 0; i < piece.Length; i++) key[i] = Gpt2ByteSymbols.OfByte[piece[i]];
            int[]? merged;
            lock (cacheLock) cacheLookup.TryGetValue(key, out merged);
            if (merged is null)
            {
                merged = Merge(piece);
                // Only pieces that merges shortened are worth remembering: for the rest (typical of
                // random bytes) the merge check is as cheap as a cache lookup, and they would evict words.
                if (merged.Length < piece.Length) Remember(new string(key), merged);
            }
            ids.AddRange(merged);
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var count = 0;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)VocabularySize || tokenById[id] is null)
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

    /// <summary>Writes vocab.json, merges.txt, tokenizer_config.json (and added_tokens.json when there are
    /// added tokens) in Hugging Face's layout, so both this loader and transformers read the directory.</summary>
    public void Save(string directory)
    {
        var addedIds = addedTokens.Select(a => a.Value).ToHashSet();
        var vocabulary = idByToken
            .Where(kv => !addedIds.Contains(kv.Value))
            .OrderBy(kv => kv.Value)
            .ToList();
        TokenizerFiles.WriteBpe(directory, vocabulary, merges, EndOfSequenceToken,
            PaddingToken == EndOfSequenceToken ? null : PaddingToken, addedTokens);
    }

    private int[] Merge(ReadOnlySpan<byte> piece)
    {
        var ids = piece.Length <= 256 ? stackalloc int[piece.Length] : new int[piece.Length];
        for (var i = 0; i < piece.Length; i++) ids[i] = byteIds[piece[i]];
        return ids[..mergeTable.Apply(ids)].ToArray();
    }

    private void Remember(string key, int[] ids)
    {
        if (cacheCapacity == 0) return;
        lock (cacheLock)
        {
            // Clearing when full keeps the cache bounded and lets it follow a shifting text distribution.
            if (cache.Count >= cacheCapacity) cache.Clear();
            cache.TryAdd(key, ids);
        }
    }
}
