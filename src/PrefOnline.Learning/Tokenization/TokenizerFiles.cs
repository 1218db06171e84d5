using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// Reading and writing the tokenizer files of a checkpoint directory, in Hugging Face's formats.
/// Every problem becomes a <see cref="TokenizerFormatException"/> naming the file and line.
/// </summary>
public static class TokenizerFiles
{
    public const string Vocabulary = "vocab.json";
    public const string Merges = "merges.txt";
    public const string Config = "tokenizer_config.json";
    public const string AddedTokens = "added_tokens.json";
    public const string FastTokenizer = "tokenizer.json";
    public const string ModelConfig = "config.json";
    public const string GenerationConfig = "generation_config.json";
    public const string SpecialTokensMap = "special_tokens_map.json";

    /// <summary>Ids above this are refused: a vocabulary that large is a corrupt file, not a model.</summary>
    public const int MaxTokenId = (1 << 24) - 1;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        // Token strings are mostly non-ASCII byte symbols ('Ġ'); keep them readable as HF does.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>A JSON object of token → id (vocab.json, added_tokens.json), in file order.</summary>
    public static List<(string Token, int Id, int Line)> ReadTokenIds(string path)
    {
        var bytes = ReadAllBytes(path);
        var result = new List<(string, int, int)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lines = new LineCounter(bytes);
        var reader = new Utf8JsonReader(SkipBom(bytes), new JsonReaderOptions { MaxDepth = 4 });
        var bomLength = bytes.Length - SkipBom(bytes).Length;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new TokenizerFormatException(path, 1, "expected a JSON object of token → id");
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var line = lines.LineOf(bomLength + (int)reader.TokenStartIndex);
                var token = reader.GetString()!;
                if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var id))
                    throw new TokenizerFormatException(path, line, $"the id of token {Quote(token)} is not an integer");
                if (id < 0 || id > MaxTokenId)
                    throw new TokenizerFormatException(path, line, $"token {Quote(token)} has id {id}, outside 0..{MaxTokenId}");
                if (!seen.Add(token))
                    throw new TokenizerFormatException(path, line, $"token {Quote(token)} appears twice");
                result.Add((token, id, line));
            }
            if (reader.TokenType != JsonTokenType.EndObject) throw new TokenizerFormatException(path, lines.LineOf(bytes.Length), "the JSON object is not closed");
            if (reader.Read()) throw new TokenizerFormatException(path, lines.LineOf(bomLength + (int)reader.TokenStartIndex), "text after the JSON object");
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(path, (int)(e.LineNumber ?? 0) + 1, $"invalid JSON: {FirstSentence(e.Message)}");
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader.GetString throws this for invalid UTF-8 or escapes inside a string.
            throw new TokenizerFormatException(path, lines.LineOf(bomLength + (int)reader.TokenStartIndex), $"invalid string: {FirstSentence(e.Message)}");
        }
        return result;
    }

    /// <summary>merges.txt: an optional "#version" first line, then one "left right" pair per line,
    /// highest priority first. Blank lines are skipped.</summary>
    public static List<(string Left, string Right, int Line)> ReadMerges(string path)
    {
        var text = ReadText(path);
        var result = new List<(string, string, int)>();
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.EndsWith('\r') ? raw[..^1] : raw;
            if (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)) continue;
            if (line.Length == 0) continue;
            var space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new TokenizerFormatException(path, lineNumber, $"expected two tokens separated by one space, got {Quote(line)}");
            result.Add((line[..space], line[(space + 1)..], lineNumber));
        }
        return result;
    }

    /// <summary>The parts of a Hugging Face tokenizer_config.json this project reads.</summary>
    public sealed record ConfigFile(
        string? TokenizerClass,
        string? EndOfSequenceToken,
        bool EndOfSequenceIsNull,
        string? PaddingToken,
        bool AddPrefixSpace,
        IReadOnlyList<(int Id, string Content)> AddedTokens,
        int? VocabularySize,
        int? EndOfSequenceId,
        int? PaddingId,
        string? BeginningOfSequenceToken = null,
        bool? AddBeginningOfSequence = null);

    public static ConfigFile ReadConfig(string path)
    {
        var bytes = ReadAllBytes(path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes.AsMemory(bytes.Length - SkipBom(bytes).Length), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(path, (int)(e.LineNumber ?? 0) + 1, $"invalid JSON: {FirstSentence(e.Message)}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException(path, null, "expected a JSON object");

            var eos = root.TryGetProperty("eos_token", out var eosElement) ? TokenContent(path, "eos_token", eosElement) : null;
            var eosIsNull = root.TryGetProperty("eos_token", out eosElement) && eosElement.ValueKind == JsonValueKind.Null;
            var pad = root.TryGetProperty("pad_token", out var padElement) ? TokenContent(path, "pad_token", padElement) : null;
            var addPrefixSpace = root.TryGetProperty("add_prefix_space", out var prefix) && prefix.ValueKind == JsonValueKind.True;

            var added = new List<(int, string)>();
            if (root.TryGetProperty("added_tokens_decoder", out var decoder))
            {
                if (decoder.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException(path, null, "added_tokens_decoder is not an object");
                foreach (var entry in decoder.EnumerateObject())
                {
                    if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) || id > MaxTokenId)
                        throw new TokenizerFormatException(path, null, $"added_tokens_decoder key {Quote(entry.Name)} is not a token id");
                    var content = TokenContent(path, $"added_tokens_decoder[{entry.Name}]", entry.Value)
                                  ?? throw new TokenizerFormatException(path, null, $"added_tokens_decoder[{entry.Name}] has no content");
                    added.Add((id, content));
                }
            }

            return new ConfigFile(
                TokenizerClass: root.TryGetProperty("tokenizer_class", out var cls) && cls.ValueKind == JsonValueKind.String ? cls.GetString() : null,
                EndOfSequenceToken: eos,
                EndOfSequenceIsNull: eosIsNull,
                PaddingToken: pad,
                AddPrefixSpace: addPrefixSpace,
                AddedTokens: added,
                VocabularySize: OptionalInt(path, root, "vocab_size"),
                EndOfSequenceId: OptionalInt(path, root, "eos_token_id"),
                PaddingId: OptionalInt(path, root, "pad_token_id"),
                BeginningOfSequenceToken: root.TryGetProperty("bos_token", out var bosElement) ? TokenContent(path, "bos_token", bosElement) : null,
                AddBeginningOfSequence: root.TryGetProperty("add_bos_token", out var addBos) && addBos.ValueKind is JsonValueKind.True or JsonValueKind.False ? addBos.GetBoolean() : null);
        }
    }

    /// <summary>vocab_size of a model's config.json, or null when it does not say.</summary>
    public static int? ReadModelVocabularySize(string path)
    {
        var bytes = ReadAllBytes(path);
        try
        {
            using var document = JsonDocument.Parse(bytes.AsMemory(bytes.Length - SkipBom(bytes).Length), new JsonDocumentOptions { MaxDepth = 64 });
            return document.RootElement.ValueKind == JsonValueKind.Object ? OptionalInt(path, document.RootElement, "vocab_size") : null;
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(path, (int)(e.LineNumber ?? 0) + 1, $"invalid JSON: {FirstSentence(e.Message)}");
        }
    }

    /// <summary>The special token ids a model's config.json or generation_config.json declares.
    /// eos_token_id may be an integer or a list (Llama 3 Instruct stops on any of three).</summary>
    public sealed record ModelTokenIds(IReadOnlyList<int> EndOfSequence, int? BeginningOfSequence, int? Padding);

    public static ModelTokenIds ReadModelTokenIds(string path)
    {
        var bytes = ReadAllBytes(path);
        try
        {
            using var document = JsonDocument.Parse(bytes.AsMemory(bytes.Length - SkipBom(bytes).Length), new JsonDocumentOptions { MaxDepth = 64 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException(path, null, "expected a JSON object");
            var eos = new List<int>();
            if (root.TryGetProperty("eos_token_id", out var element) && element.ValueKind != JsonValueKind.Null)
            {
                var values = element.ValueKind == JsonValueKind.Array ? element.EnumerateArray().ToList() : [element];
                foreach (var value in values)
                {
                    if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var id) || id < 0 || id > MaxTokenId)
                        throw new TokenizerFormatException(path, null, $"eos_token_id is neither a token id nor a list of token ids: {element}");
                    eos.Add(id);
                }
            }
            return new ModelTokenIds(eos, OptionalInt(path, root, "bos_token_id"), OptionalInt(path, root, "pad_token_id"));
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(path, (int)(e.LineNumber ?? 0) + 1, $"invalid JSON: {FirstSentence(e.Message)}");
        }
    }

    public static void WriteByteTokenizerConfig(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var bpeFile in new[] { FastTokenizer, Vocabulary, Merges })
        {
            var existing = Path.Combine(directory, bpeFile);
            if (File.Exists(existing))
                throw new TokenizerFormatException(existing, null, "refusing to save a byte tokenizer beside BPE tokenizer files: the loader would pick the BPE tokenizer; use an empty directory");
        }
        WriteAtomically(Path.Combine(directory, Config), stream =>
        {
            using var json = new Utf8JsonWriter(stream, WriterOptions);
            json.WriteStartObject();
            json.WriteString("tokenizer_class", ByteTokenizer.ConfigClassName);
            json.WriteNumber("vocab_size", ByteTokenizer.Size);
            json.WriteString("eos_token", ByteTokenizer.EndOfSequenceToken);
            json.WriteNumber("eos_token_id", ByteTokenizer.EndOfSequence);
            json.WriteString("pad_token", ByteTokenizer.PaddingToken);
            json.WriteNumber("pad_token_id", ByteTokenizer.Padding);
            json.WriteString("description", "token id = byte value 0..255, then 256 = <|endoftext|>, 257 = <|pad|>");
            json.WriteEndObject();
        });
    }

    public static void WriteBpe(
        string directory,
        IReadOnlyList<KeyValuePair<string, int>> vocabulary,
        IReadOnlyList<(string Left, string Right)> merges,
        string endOfSequenceToken,
        string? paddingToken,
        IReadOnlyList<KeyValuePair<string, int>> addedTokens)
    {
        Directory.CreateDirectory(directory);
        var fast = Path.Combine(directory, FastTokenizer);
        if (File.Exists(fast))
            throw new TokenizerFormatException(fast, null, "refusing to save vocab.json + merges.txt beside a tokenizer.json: the loader would pick tokenizer.json; use an empty directory");
        WriteAtomically(Path.Combine(directory, Vocabulary), stream =>
        {
            using var json = new Utf8JsonWriter(stream, WriterOptions);
            json.WriteStartObject();
            foreach (var (token, id) in vocabulary) json.WriteNumber(token, id);
            json.WriteEndObject();
        });
        WriteAtomically(Path.Combine(directory, Merges), stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
            writer.NewLine = "\n";
            writer.WriteLine("#version: 0.2");
            foreach (var (left, right) in merges) writer.WriteLine($"{left} {right}");
        });
        if (addedTokens.Count > 0)
        {
            WriteAtomically(Path.Combine(directory, AddedTokens), stream =>
            {
                using var json = new Utf8JsonWriter(stream, WriterOptions);
                json.WriteStartObject();
                foreach (var (token, id) in addedTokens) json.WriteNumber(token, id);
                json.WriteEndObject();
            });
        }
        else
        {
            File.Delete(Path.Combine(directory, AddedTokens));
        }
        WriteAtomically(Path.Combine(directory, Config), stream =>
        {
            using var json = new Utf8JsonWriter(stream, WriterOptions);
            json.WriteStartObject();
            json.WriteString("tokenizer_class", "GPT2Tokenizer");
            json.WriteString("bos_token", endOfSequenceToken);
            json.WriteString("eos_token", endOfSequenceToken);
            json.WriteString("unk_token", endOfSequenceToken);
            if (paddingToken is null) json.WriteNull("pad_token");
            else json.WriteString("pad_token", paddingToken);
            json.WriteBoolean("add_prefix_space", false);
            json.WriteEndObject();
        });
    }

    public static string Quote(string token)
    {
        const int Shown = 40;
        var shown = token.Length > Shown ? token[..Shown] + "…" : token;
        return JsonSerializer.Serialize(shown, new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    private static string? TokenContent(string path, string name, JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Null => null,
        // {"__type": "AddedToken", "content": "<|endoftext|>", ...} in older and newer transformers alike.
        JsonValueKind.Object when element.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
        _ => throw new TokenizerFormatException(path, null, $"{name} is neither a string nor an object with a \"content\" string"),
    };

    private static int? OptionalInt(string path, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number))
            throw new TokenizerFormatException(path, null, $"{name} is not an integer");
        return number;
    }

    private static byte[] ReadAllBytes(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerFormatException(path, null, $"cannot read: {e.Message}");
        }
    }

    private static string ReadText(string path)
    {
        var bytes = ReadAllBytes(path);
        try
        {
            return StrictUtf8.GetString(SkipBom(bytes));
        }
        catch (DecoderFallbackException e)
        {
            var offset = Math.Max(0, e.Index) + (bytes.Length - SkipBom(bytes).Length);
            throw new TokenizerFormatException(path, new LineCounter(bytes).LineOf(offset), "not valid UTF-8");
        }
    }

    private static ReadOnlySpan<byte> SkipBom(byte[] bytes) =>
        bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? bytes.AsSpan(3) : bytes;

    private static string FirstSentence(string message)
    {
        // System.Text.Json's wording for a file cut short; say it plainly.
        if (message.StartsWith("Expected depth to be zero", StringComparison.Ordinal)) return "the file ends inside an object or array (truncated?)";
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message.TrimEnd('.') : message[..end];
    }

    /// <summary>Writes to a temporary file then renames it, so a crash never leaves half a tokenizer file.</summary>
    internal static void WriteAtomically(string path, Action<Stream> write)
    {
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            write(stream);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>1-based line of a byte offset, counting forward from the last query (offsets only grow in a reader).</summary>
    private sealed class LineCounter(byte[] bytes)
    {
        private int offset;
        private int line = 1;

        public int LineOf(int target)
        {
            if (target < offset)
            {
                offset = 0;
                line = 1;
            }
            var end = Math.Min(target, bytes.Length);
            line += bytes.AsSpan(offset, end - offset).Count((byte)'\n');
            offset = end;
            return line;
        }
    }
}
