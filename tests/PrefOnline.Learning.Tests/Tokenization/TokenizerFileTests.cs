using System.Text;
using System.Text.Json;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>Malformed or unusual vocab.json / merges.txt / tokenizer_config.json / added_tokens.json:
/// a clear error naming file and line, never a crash; unusual but valid files load.</summary>
public sealed class TokenizerFileTests : IDisposable
{
    private static readonly (string, string)[] Merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")];

    private readonly TempDirectory directory = new();

    public TokenizerFileTests() => HandVocabulary.Write(directory.Path, Merges);

    public void Dispose() => directory.Dispose();

    private string VocabularyPath => directory.File("vocab.json");

    private string MergesPath => directory.File("merges.txt");

    /// <summary>vocab.json with one token per line: "{\n  "!": 0,\n ... }" so line numbers are predictable.</summary>
    private void WriteVocabularyLines(IEnumerable<string> entries) =>
        File.WriteAllText(VocabularyPath, "{\n" + string.Join(",\n", entries) + "\n}\n");

    private static IEnumerable<string> Entries(Dictionary<string, int> vocabulary) =>
        vocabulary.Select(kv => $"  {JsonSerializer.Serialize(kv.Key)}: {kv.Value}");

    private TokenizerFormatException LoadFails(string file, int? line, string fragment)
    {
        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(directory.Path));
        Assert.Equal(file, Path.GetFileName(error.FilePath));
        Assert.Equal(line, error.Line);
        Assert.Contains(fragment, error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith(error.FilePath, error.Message);
        return error;
    }

    [Fact]
    public void Vocabulary_json_syntax_error_names_the_line()
    {
        var entries = Entries(HandVocabulary.Vocabulary(Merges)).ToList();
        entries[2] = "  \"#\": oops";
        WriteVocabularyLines(entries);
        LoadFails("vocab.json", 4, "invalid JSON");
    }

    [Theory]
    [InlineData("[1, 2]", 1, "expected a JSON object")]
    [InlineData("", 1, "invalid JSON")]
    [InlineData("{\n\"a\": 0,\n\"b\": \"one\"\n}", 3, "is not an integer")]
    [InlineData("{\n\"a\": 0,\n\"b\": 1.5\n}", 3, "is not an integer")]
    [InlineData("{\n\"a\": 0,\n\n\"b\": -1\n}", 4, "outside")]
    [InlineData("{\"a\": 99999999999}", 1, "is not an integer")]
    [InlineData("{\"a\": 0, \"b\": 20000000}", 1, "outside")]
    [InlineData("{\n\"a\": 0,\n\"a\": 1\n}", 3, "appears twice")]
    [InlineData("{\n\"a\": 0,\n\"b\": 0\n}", 3, "share id 0")]
    [InlineData("{\"a\": 0", 1, "invalid JSON")]
    [InlineData("{\"a\": 0} {}", 1, "invalid JSON")]
    [InlineData("{\"a\": {\"nested\": 1}}", 1, "is not an integer")]
    public void Bad_vocabulary_json_is_refused_with_file_and_line(string json, int line, string fragment)
    {
        File.WriteAllText(VocabularyPath, json);
        LoadFails("vocab.json", line, fragment);
    }

    [Fact]
    public void Invalid_utf8_inside_a_vocabulary_string_is_refused()
    {
        File.WriteAllBytes(VocabularyPath, [.. "{\n\"a\": 0,\n\""u8, 0xFF, .. "\": 1\n}"u8]);
        LoadFails("vocab.json", 3, "invalid");
    }

    [Fact]
    public void A_vocabulary_without_every_byte_token_is_refused()
    {
        var vocabulary = HandVocabulary.Vocabulary(Merges);
        vocabulary.Remove("Ċ"); // the newline byte
        File.WriteAllText(VocabularyPath, JsonSerializer.Serialize(vocabulary));
        LoadFails("vocab.json", null, "byte 0x0A");
    }

    [Fact]
    public void A_vocabulary_without_the_end_of_sequence_token_is_refused()
    {
        File.WriteAllText(VocabularyPath, JsonSerializer.Serialize(HandVocabulary.Vocabulary(Merges, withEndOfText: false)));
        LoadFails("vocab.json", null, "<|endoftext|>");
    }

    [Theory]
    [InlineData("#version: 0.2\nĠ t\nh\n", 3, "two tokens")]
    [InlineData("#version: 0.2\nĠ t\nh e x\n", 3, "two tokens")]
    [InlineData("#version: 0.2\nĠ t\n\nh  e\n", 4, "two tokens")]
    [InlineData("#version: 0.2\nĠ t\n h\n", 3, "two tokens")]
    [InlineData("#version: 0.2\nĠ t\nh e\nĠt he\nq z\n", 5, "\"qz\", which is not in vocab.json")]
    [InlineData("#version: 0.2\nĠ t\nh e\nĠt hé\n", 4, "not in vocab.json")]
    [InlineData("#version: 0.2\nĠ t\nh e\n<|endoftext|> !\n", 4, "not in vocab.json")]
    public void Bad_merges_are_refused_with_file_and_line(string merges, int line, string fragment)
    {
        File.WriteAllText(MergesPath, merges);
        LoadFails("merges.txt", line, fragment);
    }

    [Fact]
    public void A_merge_that_builds_a_special_token_is_refused()
    {
        var vocabulary = HandVocabulary.Vocabulary(Merges);
        vocabulary["<|endoftext|><|endoftext|>"] = vocabulary.Count;
        File.WriteAllText(VocabularyPath, JsonSerializer.Serialize(vocabulary));
        File.AppendAllText(MergesPath, "<|endoftext|> <|endoftext|>\n");
        LoadFails("merges.txt", 5, "special token");
    }

    [Fact]
    public void Invalid_utf8_in_merges_names_the_line()
    {
        File.WriteAllBytes(MergesPath, [.. "#version: 0.2\nĠ t\nh e\n"u8, 0xC3, 0x28, .. " e\n"u8]);
        LoadFails("merges.txt", 4, "not valid UTF-8");
    }

    [Fact]
    public void An_unreadable_path_is_a_format_error_too()
    {
        File.Delete(MergesPath);
        Directory.CreateDirectory(MergesPath); // merges.txt is a directory: File.Exists is false
        LoadFails("merges.txt", null, "missing");
    }

    [Fact]
    public void Crlf_line_ends_a_bom_blank_lines_and_no_version_header_are_accepted()
    {
        File.WriteAllBytes(VocabularyPath, [0xEF, 0xBB, 0xBF, .. File.ReadAllBytes(VocabularyPath)]);
        // Without "#version" the first line is a merge (as Hugging Face's tokenizers library reads it).
        File.WriteAllText(MergesPath, "Ġ t\r\n\r\nh e\r\nĠt he\r\n\r\n");
        var tokenizer = Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(directory.Path));
        Assert.Equal(3, tokenizer.MergeCount);
        Assert.Equal([tokenizer.IdOf("Ġthe")!.Value], tokenizer.Encode(" the"));
    }

    [Fact]
    public void A_repeated_merge_takes_its_last_rank_as_hugging_face_does()
    {
        (string, string)[] merges = [("a", "b"), ("b", "c"), ("a", "b")];
        HandVocabulary.Write(directory.Path, merges);
        var tokenizer = Gpt2BpeTokenizer.FromDirectory(directory.Path);
        Assert.Equal(2, tokenizer.MergeCount);
        // (b,c) now outranks (a,b): "abc" → a + bc, not ab + c.
        Assert.Equal([tokenizer.IdOf("a")!.Value, tokenizer.IdOf("bc")!.Value], tokenizer.Encode("abc"));
    }

    [Fact]
    public void Tokenizer_config_chooses_end_of_sequence_and_padding_and_added_tokens_are_special()
    {
        var vocabulary = HandVocabulary.Vocabulary(Merges);
        var padId = vocabulary.Count;
        File.WriteAllText(directory.File("added_tokens.json"), $"{{\"[PAD]\": {padId}}}");
        File.WriteAllText(directory.File("tokenizer_config.json"),
            "{\"tokenizer_class\": \"GPT2Tokenizer\", \"eos_token\": {\"__type\": \"AddedToken\", \"content\": \"<|endoftext|>\"}, \"pad_token\": \"[PAD]\", " +
            $"\"added_tokens_decoder\": {{\"{padId - 1}\": {{\"content\": \"<|endoftext|>\", \"special\": true}}, \"{padId}\": {{\"content\": \"[PAD]\", \"special\": true}}}}}}");
        var tokenizer = Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(directory.Path));
        Assert.Equal(padId, tokenizer.PaddingId);
        Assert.Equal(padId - 1, tokenizer.EndOfSequenceId);
        Assert.Equal(padId + 1, tokenizer.VocabularySize);
        Assert.Equal(" the", tokenizer.Decode([tokenizer.PaddingId, .. tokenizer.Encode(" the"), tokenizer.EndOfSequenceId]));
        Assert.DoesNotContain(padId, tokenizer.Encode("[PAD]"));
    }

    [Theory]
    [InlineData("{\"pad_token\": \"[PAD]\"}", "no padding token \"[PAD]\"")]
    [InlineData("{\"eos_token\": \"</s>\"}", "no end-of-sequence token \"</s>\"")]
    [InlineData("{\"eos_token\": null}", "eos_token is null")]
    [InlineData("{\"add_prefix_space\": true}", "add_prefix_space")]
    [InlineData("{\"pad_token\": 5}", "pad_token is neither")]
    [InlineData("{\"pad_token\": \"!\"}", "also the token of byte 0x21")]
    [InlineData("{\"tokenizer_class\": \"PrefOnlineByteTokenizer\"}", "remove one or the other")]
    [InlineData("{\"added_tokens_decoder\": {\"x\": {\"content\": \"a\"}}}", "is not a token id")]
    [InlineData("{\"added_tokens_decoder\": {\"0\": {\"content\": \"[X]\"}}}", "takes id 0")]
    [InlineData("[]", "expected a JSON object")]
    public void Bad_tokenizer_config_is_refused(string json, string fragment)
    {
        File.WriteAllText(directory.File("tokenizer_config.json"), json);
        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(directory.Path));
        Assert.Contains(fragment, error.Message);
        Assert.Contains(Path.GetFileName(error.FilePath), new[] { "tokenizer_config.json", "vocab.json" });
    }

    [Fact]
    public void Tokenizer_config_syntax_error_names_the_line()
    {
        File.WriteAllText(directory.File("tokenizer_config.json"), "{\n  \"eos_token\": \"<|endoftext|>\",\n  oops\n}");
        LoadFails("tokenizer_config.json", 3, "invalid JSON");
    }

    [Theory]
    [InlineData("{\n\"[PAD]\": 3\n}", 2, "takes id 3")]
    [InlineData("{\n\"Ġthe\": 1\n}", 2, "vocab.json gives it")]
    [InlineData("{\n\"[PAD]\": \"x\"\n}", 2, "is not an integer")]
    public void Bad_added_tokens_are_refused_with_file_and_line(string json, int line, string fragment)
    {
        File.WriteAllText(directory.File("added_tokens.json"), json);
        LoadFails("added_tokens.json", line, fragment);
    }

    /// <summary>Random corruption of valid files: every outcome is a loaded tokenizer that still round-trips,
    /// or a <see cref="TokenizerFormatException"/>; never another exception.</summary>
    [Fact]
    public void Corrupted_files_never_crash_the_loader()
    {
        var validVocabulary = File.ReadAllBytes(VocabularyPath);
        var validMerges = File.ReadAllBytes(MergesPath);
        var random = new Random(99);
        var refused = 0;
        for (var trial = 0; trial < 400; trial++)
        {
            File.WriteAllBytes(VocabularyPath, trial % 2 == 0 ? Corrupt(validVocabulary, random) : validVocabulary);
            File.WriteAllBytes(MergesPath, trial % 2 == 1 ? Corrupt(validMerges, random) : validMerges);
            try
            {
                var tokenizer = TokenizerLoader.FromDirectory(directory.Path);
                foreach (var bytes in TextCases.Bytes) Assert.Equal(bytes, tokenizer.DecodeBytes(tokenizer.EncodeBytes(bytes)));
            }
            catch (TokenizerFormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Problem));
                refused++;
            }
        }
        Assert.InRange(refused, 100, 400); // most corruptions are caught; some (e.g. a changed digit) are still valid files
    }

    private static byte[] Corrupt(byte[] valid, Random random)
    {
        var bytes = valid.ToList();
        switch (random.Next(5))
        {
            case 0:
                bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                break;
            case 1:
                bytes.RemoveRange(random.Next(bytes.Count), 1);
                break;
            case 2:
                bytes.Insert(random.Next(bytes.Count), (byte)"\"{}[]:,\n 0-\\"[random.Next(12)]);
                break;
            case 3:
                return bytes.Take(random.Next(bytes.Count)).ToArray();
            default:
                for (var i = 0; i < 5; i++) bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                break;
        }
        return bytes.ToArray();
    }
}
