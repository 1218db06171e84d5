using System.Text.Json;

namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// The parts of a Hugging Face <c>tokenizer.json</c> (the "fast tokenizer" file of the <c>tokenizers</c>
/// library) that a byte-level BPE needs, checked: anything that would change the ids and that
/// <see cref="HuggingFaceBpeTokenizer"/> does not implement is refused with one line naming the key.
/// </summary>
/// <remarks>
/// Accepted (what GPT-2, Llama 3, Qwen2/3 and SmolLM ship):
/// <list type="bullet">
/// <item>model.type "BPE" with dropout null, no continuing_subword_prefix / end_of_word_suffix, byte_fallback false;
///   ignore_merges honoured (Llama 3: a pre-token that is itself in the vocabulary is one token);
///   merges as "a b" strings or ["a", "b"] arrays (tokenizers ≥ 0.20 writes arrays).</item>
/// <item>pre_tokenizer ByteLevel (use_regex: GPT-2's pattern; add_prefix_space false), or a Sequence of
///   Split (a regex, behavior Isolated, invert false), Digits and one final ByteLevel.</item>
/// <item>normalizer null, or NFC (Qwen2/3), see <see cref="HuggingFaceBpeTokenizer"/> for what NFC means here.</item>
/// <item>added_tokens: id, content, special; a non-special added token must not use lstrip, rstrip or single_word.</item>
/// <item>post_processor: only read to learn whether it puts a beginning-of-sequence token first.</item>
/// </list>
/// </remarks>
public sealed record TokenizerJsonFile(
    IReadOnlyList<(string Token, int Id)> Vocabulary,
    IReadOnlyList<string> Merges,
    bool IgnoreMerges,
    IReadOnlyList<TokenizerJsonFile.AddedToken> AddedTokens,
    IReadOnlyList<ByteLevelPreTokenizer.Step> PreTokenizerSteps,
    bool NormalizesToNfc,
    string? PostProcessorFirstToken)
{
    /// <summary>GPT-2's pre-tokenization pattern, what ByteLevel's use_regex applies.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>An entry of added_tokens. Special tokens are never produced by Encode and dropped by Decode.</summary>
    public sealed record AddedToken(int Id, string Content, bool Special);

    public static TokenizerJsonFile Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerFormatException(path, null, $"cannot read: {e.Message}");
        }
        JsonDocument document;
        try
        {
            var start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
            document = JsonDocument.Parse(bytes.AsMemory(start), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(path, (int)(e.LineNumber ?? 0) + 1, $"invalid JSON: {e.Message.Split(". ")[0].TrimEnd('.')}");
        }
        using (document)
        {
            try
            {
                return Parse(path, document.RootElement);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement's accessors throw this for a value of another kind than the format says (a string id, ...).
                throw Error(path, $"a value has the wrong JSON kind: {e.Message.Split(". ")[0].TrimEnd('.')}");
            }
        }
    }

    private static TokenizerJsonFile Parse(string path, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Error(path, "expected a JSON object");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object) throw Error(path, "has no \"model\" object");
        var type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        // tokenizers < 0.14 wrote BPE models without "type"; their "merges" tells them apart.
        if (type is null && model.TryGetProperty("merges", out _)) type = "BPE";
        if (type != "BPE")
            throw Error(path, $"model type {TokenizerFiles.Quote(type ?? "(none)")} is not supported; supported: byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM), not SentencePiece Unigram, WordPiece or WordLevel");

        var steps = ReadPreTokenizer(path, root);
        RequireNullOrEmpty(path, model, "dropout", "model.dropout (BPE dropout makes encoding random)");
        RequireNullOrEmpty(path, model, "continuing_subword_prefix", "model.continuing_subword_prefix");
        RequireNullOrEmpty(path, model, "end_of_word_suffix", "model.end_of_word_suffix");
        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
            throw Error(path, "model.byte_fallback is true (a SentencePiece-style BPE, e.g. Llama 2 or Mistral); supported: byte-level BPE");

        var vocabulary = new List<(string, int)>();
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object) throw Error(path, "model.vocab is not an object of token → id");
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0 || id > TokenizerFiles.MaxTokenId)
                throw Error(path, $"model.vocab: the id of {TokenizerFiles.Quote(entry.Name)} is not an integer in 0..{TokenizerFiles.MaxTokenId}");
            vocabulary.Add((entry.Name, id));
        }

        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var mergeArray) || mergeArray.ValueKind != JsonValueKind.Array) throw Error(path, "model.merges is not an array");
        var index = 0;
        foreach (var merge in mergeArray.EnumerateArray())
        {
            if (merge.ValueKind == JsonValueKind.String && merge.GetString() is { } pair && pair.Split(' ') is [{ Length: > 0 }, { Length: > 0 }])
                merges.Add(pair);
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2 && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String
                     && merge[0].GetString() is { Length: > 0 } left && merge[1].GetString() is { Length: > 0 } right && !left.Contains(' ') && !right.Contains(' '))
                merges.Add(left + " " + right);
            else
                throw Error(path, $"model.merges[{index}] is neither \"a b\" nor [\"a\", \"b\"] of two tokens without spaces");
            index++;
        }

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedArray) && addedArray.ValueKind != JsonValueKind.Null)
        {
            if (addedArray.ValueKind != JsonValueKind.Array) throw Error(path, "added_tokens is not an array");
            index = 0;
            foreach (var token in addedArray.EnumerateArray())
            {
                if (token.ValueKind != JsonValueKind.Object
                    || !token.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out var id) || id < 0 || id > TokenizerFiles.MaxTokenId
                    || !token.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String || content.GetString() is not { Length: > 0 } text)
                    throw Error(path, $"added_tokens[{index}] needs an \"id\" in 0..{TokenizerFiles.MaxTokenId} and a non-empty \"content\"");
                var special = token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                if (!special)
                {
                    foreach (var flag in new[] { "lstrip", "rstrip", "single_word" })
                    {
                        if (token.TryGetProperty(flag, out var f) && f.ValueKind == JsonValueKind.True)
                            throw Error(path, $"added_tokens[{index}] {TokenizerFiles.Quote(text)} is a non-special token with {flag} true, which is not implemented");
                    }
                }
                added.Add(new AddedToken(id, text, special));
                index++;
            }
        }

        return new TokenizerJsonFile(
            vocabulary,
            merges,
            model.TryGetProperty("ignore_merges", out var ignore) && ignore.ValueKind == JsonValueKind.True,
            added,
            steps,
            ReadNormalizer(path, root),
            FirstTemplateToken(root));
    }

    private static List<ByteLevelPreTokenizer.Step> ReadPreTokenizer(string path, JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw Error(path, "has no pre_tokenizer; supported: byte-level BPE, whose pre_tokenizer is ByteLevel or a Sequence ending in ByteLevel");
        var parts = TypeOf(pre) == "Sequence" && pre.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList()
            : [pre];
        if (parts.Count == 0 || TypeOf(parts[^1]) != "ByteLevel")
            throw Error(path, $"pre_tokenizer {TokenizerFiles.Quote(TypeOf(pre) ?? "?")} does not end in ByteLevel (e.g. Metaspace: a SentencePiece-style tokenizer); supported: byte-level BPE");

        var steps = new List<ByteLevelPreTokenizer.Step>();
        for (var i = 0; i < parts.Count; i++)
        {
            var part = parts[i];
            var name = $"pre_tokenizer step {i} ({TypeOf(part) ?? "?"})";
            switch (TypeOf(part))
            {
                case "ByteLevel" when i == parts.Count - 1:
                    if (part.TryGetProperty("add_prefix_space", out var prefix) && prefix.ValueKind == JsonValueKind.True)
                        throw Error(path, $"{name}: add_prefix_space true is not implemented (it changes the text before encoding)");
                    if (!part.TryGetProperty("use_regex", out var useRegex) || useRegex.ValueKind != JsonValueKind.False)
                        steps.Add(ByteLevelPreTokenizer.Step.Split(TokenizerJsonFile.Gpt2Pattern));
                    break;
                case "Split":
                    if (!part.TryGetProperty("pattern", out var pattern) || !pattern.TryGetProperty("Regex", out var regex) && !pattern.TryGetProperty("String", out regex) || regex.ValueKind != JsonValueKind.String)
                        throw Error(path, $"{name}: pattern is neither {{\"Regex\": ...}} nor {{\"String\": ...}}");
                    if (!part.TryGetProperty("behavior", out var behavior) || behavior.GetString() != "Isolated")
                        throw Error(path, $"{name}: behavior {TokenizerFiles.Quote(part.TryGetProperty("behavior", out behavior) ? behavior.ToString() : "(none)")} is not implemented; supported: Isolated");
                    if (part.TryGetProperty("invert", out var invert) && invert.ValueKind == JsonValueKind.True)
                        throw Error(path, $"{name}: invert true is not implemented");
                    var text = regex.GetString()!;
                    try
                    {
                        steps.Add(pattern.TryGetProperty("Regex", out _) ? ByteLevelPreTokenizer.Step.Split(text) : ByteLevelPreTokenizer.Step.Split(System.Text.RegularExpressions.Regex.Escape(text)));
                    }
                    catch (ArgumentException e)
                    {
                        throw Error(path, $"{name}: the regex does not compile in .NET: {e.Message}");
                    }
                    break;
                case "Digits":
                    steps.Add(ByteLevelPreTokenizer.Step.Digits(part.TryGetProperty("individual_digits", out var individual) && individual.ValueKind == JsonValueKind.True));
                    break;
                default:
                    throw Error(path, $"{name} is not implemented; supported: Split (Isolated), Digits, then ByteLevel last");
            }
        }
        return steps;
    }

    private static bool ReadNormalizer(string path, JsonElement root)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind == JsonValueKind.Null) return false;
        var parts = TypeOf(normalizer) == "Sequence" && normalizer.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList()
            : [normalizer];
        if (parts.Count == 0) return false;
        if (parts.Count == 1 && TypeOf(parts[0]) == "NFC") return true;
        throw Error(path, $"normalizer {TokenizerFiles.Quote(string.Join(", ", parts.Select(p => TypeOf(p) ?? "?")))} is not implemented; supported: none or NFC");
    }

    /// <summary>The special token a TemplateProcessing post-processor puts before a single sequence
    /// (Llama 3's &lt;|begin_of_text|&gt;), or null.</summary>
    private static string? FirstTemplateToken(JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var post) || post.ValueKind != JsonValueKind.Object) return null;
        var processors = TypeOf(post) == "Sequence" && post.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList()
            : [post];
        foreach (var processor in processors)
        {
            if (TypeOf(processor) == "TemplateProcessing" && processor.TryGetProperty("single", out var single) && single.ValueKind == JsonValueKind.Array
                && single.GetArrayLength() > 0 && single[0].TryGetProperty("SpecialToken", out var first) && first.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                return id.GetString();
        }
        return null;
    }

    private static string? TypeOf(JsonElement element) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;

    private static void RequireNullOrEmpty(string path, JsonElement model, string key, string what)
    {
        if (!model.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null || value.ValueKind == JsonValueKind.String && value.GetString() == "") return;
        throw Error(path, $"{what} is {value} and is not implemented; supported: null");
    }

    private static TokenizerFormatException Error(string path, string problem) => new(path, null, problem);
}
