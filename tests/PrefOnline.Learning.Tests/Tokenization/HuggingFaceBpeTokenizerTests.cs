using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Tokenization;
using Xunit.Abstractions;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>
/// tokenizer.json (byte-level BPE) through <see cref="HuggingFaceBpeTokenizer"/>, on files written by
/// <see cref="ByteLevelBpeTokenizerWriter"/>: ids against an independent Python implementation of Hugging
/// Face's encoding (byte_level_bpe_reference.py; the tokenizers package is not installed here), lossless round
/// trips, special tokens and stop ids from the checkpoint's files, the loader's choice and refusals.
/// </summary>
[Collection(WrittenTokenizerCollection.Name)]
public sealed class HuggingFaceBpeTokenizerTests(WrittenTokenizerFixture written, ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory scratch = new();

    public void Dispose() => scratch.Dispose();

    /// <summary>The hand cases, emoji, CJK, special-token spellings, a non-special added token, a 100k-character mix,
    /// invalid UTF-8, seeded random byte strings, and the training text line by line (so the merges are exercised).</summary>
    private static List<byte[]> Cases()
    {
        var random = new Random(5);
        var cjk = new string(Enumerable.Range(0, 2000).Select(_ => random.Next(8) == 0 ? '。' : (char)random.Next(0x4E00, 0x9FFF)).ToArray());
        var longText = new StringBuilder();
        var fragments = TextCases.Hand.Where(h => h.Length > 0).ToArray();
        while (longText.Length < 100_000) longText.Append(fragments[random.Next(fragments.Length)]).Append(random.Next(3) == 0 ? "\n" : " ");
        string[] extra =
        [
            "😀😀😀 emoji 👍🏽👨‍👩‍👧🇫🇷 after", "日本語の文章と中文句子，还有한국어。", cjk, longText.ToString(0, 100_000),
            "<|endoftext|><|begin_of_text|><|pad|><|im_start|>user\nhi<|im_end|>", "<think>reasoning</think> answer <think><think>",
            "x<thin", "a𝐀b 𝟏𝟐3 12345 ١٢٣", "I'M HERE 'S 'LL", "\r\n\r\n  \t x", new string(' ', 3000) + "end",
        ];
        return TextCases.Hand.Concat(extra).Select(Encoding.UTF8.GetBytes)
            .Concat(TextCases.Bytes)
            .Concat(TextCases.Random(seed: 21, count: 2000, withInvalidBytes: true))
            .Concat(TextCases.TrainingCorpus().Split('\n').Select(Encoding.UTF8.GetBytes))
            .ToList();
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama3")]
    [InlineData("smollm")]
    public void Ids_match_the_reference_and_every_case_round_trips(string flavour)
    {
        var directory = written.Flavour(flavour);
        var tokenizer = Assert.IsType<HuggingFaceBpeTokenizer>(TokenizerLoader.FromDirectory(directory));
        var cases = Cases();
        var reference = PythonReference.EncodeWithTokenizerJson(directory, cases);

        var problems = new List<string>();
        for (var i = 0; i < cases.Count; i++)
        {
            var ids = tokenizer.EncodeBytes(cases[i]);
            var shown = Convert.ToHexString(cases[i].AsSpan(0, Math.Min(cases[i].Length, 40)));
            if (!ids.SequenceEqual(reference[i]))
                problems.Add($"case {i} {shown}: C# [{string.Join(' ', ids.Take(30))}] vs reference [{string.Join(' ', reference[i].Take(30))}]");
            else if (!tokenizer.DecodeBytes(ids).SequenceEqual(cases[i]))
                problems.Add($"case {i} {shown}: DecodeBytes is not the input");
            else if (tokenizer.Decode(ids) != Encoding.UTF8.GetString(cases[i]))
                problems.Add($"case {i} {shown}: Decode differs from the input with invalid sequences replaced");
            else if (IsValidUtf8(cases[i]) && !tokenizer.Encode(Encoding.UTF8.GetString(cases[i])).SequenceEqual(ids))
                problems.Add($"case {i} {shown}: Encode(text) differs from EncodeBytes(its UTF-8)");
        }
        Assert.True(problems.Count == 0, $"{flavour}: {problems.Count} of {cases.Count} cases:\n{string.Join('\n', problems.Take(10))}");

        var merged = reference.SelectMany(ids => ids).Where(id => id >= 256 && id < 995).Distinct().Count();
        output.WriteLine($"{flavour}: {cases.Count} cases agree; {merged} distinct merged tokens used");
        Assert.True(merged > 500, $"only {merged} merged tokens occur: the cases hardly exercise the merges");
    }

    /// <summary>
    /// Why a tokenizer.json's NFC normalizer is not applied (HuggingFaceBpeTokenizer's remarks): under the repository's
    /// InvariantGlobalization (Directory.Build.props), .NET's string.Normalize has no Unicode data and returns text unchanged,
    /// and IsNormalized says yes to decomposed text. If this starts failing, .NET normalizes in invariant mode: apply NFC
    /// before pre-tokenization when the file asks for it.
    /// </summary>
    [Fact]
    public void String_normalization_is_a_no_op_under_the_repositorys_invariant_globalization()
    {
        Assert.True(System.Globalization.CultureInfo.CurrentCulture.Equals(System.Globalization.CultureInfo.InvariantCulture));
        const string decomposed = "e\u0301 \u1100\u1161\u11AB"; // é and 간 as base + combining marks / conjoining jamo
        Assert.Equal(decomposed, decomposed.Normalize(System.Text.NormalizationForm.FormC)); // NFC would give "\u00E9 \uAC04"
        Assert.True(decomposed.IsNormalized(System.Text.NormalizationForm.FormC));
    }

    [Fact]
    public void Long_pre_tokens_merge_in_n_log_n_with_the_same_ids()
    {
        // Around the switch to the project's merge loop, against the independent reference.
        var tokenizer = written.Tokenizer;
        var words = new[] { "the", "license", "software", "Program", "日本語" };
        var cases = new List<byte[]>();
        foreach (var word in words)
        {
            foreach (var bytes in new[] { HuggingFaceBpeTokenizer.LongPieceBytes - 3, HuggingFaceBpeTokenizer.LongPieceBytes, HuggingFaceBpeTokenizer.LongPieceBytes + 1, 700 })
            {
                var piece = new StringBuilder();
                while (Encoding.UTF8.GetByteCount(piece.ToString() + word) <= bytes) piece.Append(word);
                cases.Add(Encoding.UTF8.GetBytes(piece.ToString()));
            }
        }
        var reference = PythonReference.EncodeWithTokenizerJson(written.Flavour("gpt2"), cases);
        for (var i = 0; i < cases.Count; i++) Assert.Equal(reference[i], tokenizer.EncodeBytes(cases[i]));

        // 300,000 letters in one piece: quadratic merging would take minutes. Compared with the GPT-2 tokenizer
        // (the same merge semantics, verified against encoder.py) built from the same vocabulary and merges.
        var json = written.WrittenJson();
        var gpt2 = new Gpt2BpeTokenizer(
            json["model"]!["vocab"]!.AsObject().ToDictionary(kv => kv.Key, kv => (int)kv.Value!),
            json["model"]!["merges"]!.AsArray().Select(m => ((string)m![0]!, (string)m[1]!)).ToList(),
            "<|endoftext|>",
            addedTokens: WrittenTokenizerFixture.Specials.All.Select((t, i) => (t, 995 + i)).ToDictionary(t => t.t, t => t.Item2));
        foreach (var text in new[] { string.Concat(Enumerable.Repeat("license", 43_000)), new string('中', 100_000), new string('7', 300_000) })
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var ids = tokenizer.Encode(text);
            output.WriteLine($"{text.Length:N0} chars of {text[0]}: {ids.Length:N0} tokens in {watch.Elapsed.TotalSeconds:F2} s");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"{text.Length} characters took {watch.Elapsed}");
            Assert.Equal(gpt2.Encode(text), ids);
            Assert.Equal(text, tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void Encoding_from_many_threads_at_once_gives_the_sequential_ids()
    {
        var cases = TextCases.Random(seed: 9, count: 3000, withInvalidBytes: true);
        var sequential = HuggingFaceBpeTokenizer.FromDirectory(written.Flavour("llama3"));
        var expected = cases.Select(c => sequential.EncodeBytes(c)).ToArray();
        var shared = HuggingFaceBpeTokenizer.FromDirectory(written.Flavour("llama3")); // a cold cache, filled concurrently
        var actual = new int[cases.Count][];
        Parallel.For(0, cases.Count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => actual[i] = shared.EncodeBytes(cases[i]));
        for (var i = 0; i < cases.Count; i++) Assert.Equal(expected[i], actual[i]);
    }

    [Fact]
    public void The_writer_learns_the_merges_the_python_training_learns()
    {
        // Python reads text files with universal newlines (\r\n → \n): give both sides the same text.
        var text = TextCases.TrainingCorpus().Replace("\r\n", "\n").Replace('\r', '\n');
        var writer = scratch.File("writer");
        ByteLevelBpeTokenizerWriter.Write(writer, WrittenTokenizerFixture.VocabularySize, WrittenTokenizerFixture.Specials, text);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(writer, "tokenizer.json")))!;
        var merges = json["model"]!["merges"]!.AsArray().Select(m => $"{m![0]} {m[1]}").ToList();
        var corpus = scratch.File("corpus.txt");
        File.WriteAllText(corpus, text);
        PythonReference.Run(TimeSpan.FromMinutes(2), "train", corpus, scratch.Path, merges.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(File.ReadAllLines(scratch.File("merges.txt")).Skip(1), merges);
        var pythonVocabulary = JsonNode.Parse(File.ReadAllText(scratch.File("vocab.json")))!.AsObject().Where(kv => kv.Key != "<|endoftext|>").Select(kv => (kv.Key, (int)kv.Value!));
        var writtenVocabulary = json["model"]!["vocab"]!.AsObject().Select(kv => (kv.Key, (int)kv.Value!));
        Assert.Equal(pythonVocabulary.OrderBy(t => t.Item2), writtenVocabulary.OrderBy(t => t.Item2));
        Assert.Equal(WrittenTokenizerFixture.VocabularySize - WrittenTokenizerFixture.Specials.All.Count, merges.Count + 256);
    }

    [Fact]
    public void Special_tokens_come_from_the_written_config_and_stay_text_when_typed()
    {
        var tokenizer = written.Tokenizer;
        Assert.Equal(WrittenTokenizerFixture.VocabularySize, tokenizer.VocabularySize);
        Assert.Equal(995, tokenizer.EndOfSequenceId);
        Assert.Equal(996, tokenizer.BeginningOfSequenceId);
        Assert.Equal(997, tokenizer.PaddingId);
        Assert.Equal([995], tokenizer.StopIds);
        Assert.Equal([995, 996, 997, 998, 999], tokenizer.SpecialIds);

        var typed = tokenizer.Encode("<|im_start|>user<|endoftext|>");
        Assert.DoesNotContain(typed, id => id >= 995);
        Assert.Equal("<|im_start|>user<|endoftext|>", tokenizer.Decode(typed));
        // Special ids decode to nothing, wherever they sit.
        int[] framed = [996, 998, .. tokenizer.Encode("hi"), 999, 995];
        Assert.Equal("hi", tokenizer.Decode(framed));
        Assert.Empty(tokenizer.DecodeBytes([995, 996, 997]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([WrittenTokenizerFixture.VocabularySize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([-1]));
    }

    [Fact]
    public void A_completion_cut_inside_a_character_keeps_its_bytes_and_decodes_to_a_replacement_character()
    {
        var tokenizer = written.Tokenizer;
        var ids = tokenizer.Encode("ok 😀");
        var bytes = Encoding.UTF8.GetBytes("ok 😀");
        // Cut after every token: the bytes of the prefix are exactly a prefix of the text's bytes.
        for (var cut = 0; cut <= ids.Length; cut++)
        {
            var prefix = tokenizer.DecodeBytes(ids.AsSpan(0, cut));
            Assert.True(bytes.AsSpan().StartsWith(prefix));
            Assert.Equal(Encoding.UTF8.GetString(prefix), tokenizer.Decode(ids.AsSpan(0, cut)));
        }
        var emojiTokens = ids.Length - tokenizer.Encode("ok").Length;
        Assert.True(emojiTokens > 1, "the emoji is not split into byte tokens; pick a character the merges do not cover");
        Assert.EndsWith("\uFFFD", tokenizer.Decode(ids.AsSpan(0, ids.Length - 1)));
    }

    [Fact]
    public void Stop_padding_and_beginning_ids_follow_the_checkpoint_files_precedence()
    {
        var directory = scratch.File("model");
        Copy(written.Flavour("gpt2"), directory);
        var config = Path.Combine(directory, "tokenizer_config.json");

        // generation_config.json's eos_token_id list adds stop ids; tokenizer_config.json's eos_token stays the end of sequence.
        File.WriteAllText(Path.Combine(directory, "generation_config.json"), "{\"eos_token_id\": [998, 999], \"bos_token_id\": 996}");
        File.WriteAllText(Path.Combine(directory, "config.json"), "{\"eos_token_id\": 995, \"pad_token_id\": 997}");
        var tokenizer = HuggingFaceBpeTokenizer.FromDirectory(directory);
        Assert.Equal(995, tokenizer.EndOfSequenceId);
        Assert.Equal([995, 998, 999], tokenizer.StopIds);

        // Without eos_token: the first eos_token_id of generation_config.json, then config.json; pad from pad_token_id.
        File.WriteAllText(config, "{\"tokenizer_class\": \"PreTrainedTokenizerFast\"}");
        tokenizer = HuggingFaceBpeTokenizer.FromDirectory(directory);
        Assert.Equal(998, tokenizer.EndOfSequenceId);
        Assert.Equal([998, 999, 995], tokenizer.StopIds);
        Assert.Equal(997, tokenizer.PaddingId);
        Assert.Equal(996, tokenizer.BeginningOfSequenceId); // the post-processor's template
        File.Delete(Path.Combine(directory, "generation_config.json"));
        tokenizer = HuggingFaceBpeTokenizer.FromDirectory(directory);
        Assert.Equal(995, tokenizer.EndOfSequenceId);
        Assert.Equal([995], tokenizer.StopIds);

        // add_bos_token false wins over the template; no pad anywhere pads with the end of sequence.
        File.WriteAllText(Path.Combine(directory, "config.json"), "{\"eos_token_id\": 999}");
        File.WriteAllText(config, "{\"add_bos_token\": false}");
        tokenizer = HuggingFaceBpeTokenizer.FromDirectory(directory);
        Assert.Null(tokenizer.BeginningOfSequenceId);
        Assert.Equal(999, tokenizer.PaddingId);

        File.WriteAllText(Path.Combine(directory, "config.json"), "{\"eos_token_id\": 5000}");
        Assert.Contains("eos_token_id 5000 is not a token", Assert.Throws<TokenizerFormatException>(() => HuggingFaceBpeTokenizer.FromDirectory(directory)).Message);
        File.WriteAllText(Path.Combine(directory, "config.json"), "{\"eos_token_id\": 300}");
        Assert.Contains("not a special added token", Assert.Throws<TokenizerFormatException>(() => HuggingFaceBpeTokenizer.FromDirectory(directory)).Message);
        File.Delete(Path.Combine(directory, "config.json"));
        Assert.Contains("names no end-of-sequence token", Assert.Throws<TokenizerFormatException>(() => HuggingFaceBpeTokenizer.FromDirectory(directory)).Message);
        File.WriteAllText(config, "{\"eos_token\": \"<|nope|>\"}");
        Assert.Contains("eos_token \"<|nope|>\" is not a token", Assert.Throws<TokenizerFormatException>(() => HuggingFaceBpeTokenizer.FromDirectory(directory)).Message);
    }

    [Fact]
    public void The_loader_prefers_tokenizer_json_and_a_saved_copy_loads_back_identically()
    {
        var directory = scratch.File("both");
        Copy(written.Flavour("llama3"), directory);
        HandVocabulary.Write(directory, [("Ġ", "t")]);
        var tokenizer = Assert.IsType<HuggingFaceBpeTokenizer>(TokenizerLoader.FromDirectory(directory));

        var target = scratch.File("saved");
        TokenizerLoader.Save(ByteTokenizer.Instance, target); // an older byte policy in the same place
        TokenizerLoader.Save(tokenizer, target);
        Assert.Equal(File.ReadAllBytes(Path.Combine(directory, "tokenizer.json")), File.ReadAllBytes(Path.Combine(target, "tokenizer.json")));
        var reloaded = Assert.IsType<HuggingFaceBpeTokenizer>(TokenizerLoader.FromDirectory(target));
        foreach (var bytes in TextCases.Random(seed: 8, count: 300, withInvalidBytes: true))
            Assert.Equal(tokenizer.EncodeBytes(bytes), reloaded.EncodeBytes(bytes));
        Assert.Equal(tokenizer.StopIds, reloaded.StopIds);
        Assert.Empty(Directory.GetFiles(target, "*.tmp"));
        Assert.Contains("refusing", Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.Save(ByteTokenizer.Instance, target)).Message);
    }

    public static TheoryData<string, string> Unsupported => new()
    {
        { """{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""", "model type \"Unigram\" is not supported" },
        { """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""", "model type \"WordPiece\" is not supported" },
        { """{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "does not end in ByteLevel" },
        { """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}""", "byte_fallback is true" },
        { """{"normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "normalizer \"Lowercase\" is not implemented" },
        { """{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "add_prefix_space true is not implemented" },
        { """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}""", "model.merges[0] is neither" },
        { """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "lacks the single-byte token" },
        { """{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": "x", "behavior": "Isolated"}, {"type": "ByteLevel"}]}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "the wrong JSON kind" },
        { """{"pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": "7", "content": "x"}], "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "the wrong JSON kind" },
        { """{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, {"type": "ByteLevel"}]}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "the regex does not compile" },
        { """{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Removed"}, {"type": "ByteLevel"}]}, "model": {"type": "BPE", "vocab": {}, "merges": []}}""", "behavior \"Removed\" is not implemented" },
        { "{}", "has no \"model\" object" },
        { "{\"model\": ", "invalid JSON" },
    };

    [Theory]
    [MemberData(nameof(Unsupported))]
    public void What_cannot_be_loaded_is_refused_in_one_line_naming_tokenizer_json(string json, string fragment)
    {
        File.WriteAllText(scratch.File("tokenizer.json"), json);
        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(scratch.Path));
        Assert.Equal("tokenizer.json", Path.GetFileName(error.FilePath));
        Assert.Contains(fragment, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_merge_outside_the_vocabulary_and_a_byte_tokenizer_config_beside_tokenizer_json_are_refused()
    {
        var json = written.WrittenJson();
        json["model"]!["merges"]!.AsArray().Add(new JsonArray("Ġ", "zzz"));
        File.WriteAllText(scratch.File("tokenizer.json"), json.ToJsonString());
        Assert.Contains("uses \"zzz\", which is not in model.vocab", Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(scratch.Path)).Message);

        File.WriteAllText(scratch.File("tokenizer.json"), written.WrittenJson().ToJsonString());
        File.WriteAllText(scratch.File("tokenizer_config.json"), "{\"tokenizer_class\": \"PrefOnlineByteTokenizer\"}");
        Assert.Contains("names PrefOnlineByteTokenizer", Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(scratch.Path)).Message);
    }

    private static bool IsValidUtf8(byte[] bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
