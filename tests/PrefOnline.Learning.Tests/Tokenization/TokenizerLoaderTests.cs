using System.Text.Json;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>The loader's rule (which tokenizer a checkpoint directory holds) and Save.</summary>
public sealed class TokenizerLoaderTests : IDisposable
{
    private static readonly (string, string)[] Merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")];

    private readonly TempDirectory directory = new();

    public void Dispose() => directory.Dispose();

    private TokenizerFormatException Refused(string file, string fragment)
    {
        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(directory.Path));
        Assert.Equal(file, Path.GetFileName(error.FilePath));
        Assert.Contains(fragment, error.Message);
        return error;
    }

    [Fact]
    public void A_directory_with_no_tokenizer_files_uses_bytes()
    {
        Assert.Same(ByteTokenizer.Instance, TokenizerLoader.FromDirectory(directory.Path));
        File.WriteAllText(directory.File("config.json"), "{\"model_type\": \"gpt2\", \"vocab_size\": 258}");
        Assert.Same(ByteTokenizer.Instance, TokenizerLoader.FromDirectory(directory.Path));
    }

    [Fact]
    public void A_bare_model_with_another_vocabulary_size_is_refused()
    {
        File.WriteAllText(directory.File("config.json"), "{\"model_type\": \"gpt2\", \"vocab_size\": 50257}");
        Refused("config.json", "vocab_size 50257");
    }

    [Fact]
    public void Vocab_and_merges_choose_gpt2_bpe()
    {
        HandVocabulary.Write(directory.Path, Merges);
        File.WriteAllText(directory.File("config.json"), "{\"vocab_size\": 50257}");
        Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(directory.Path));
    }

    [Fact]
    public void Half_a_bpe_tokenizer_is_refused_naming_the_missing_file()
    {
        HandVocabulary.Write(directory.Path, Merges);
        File.Delete(directory.File("merges.txt"));
        Refused("merges.txt", "has vocab.json but");
        HandVocabulary.Write(directory.Path, Merges);
        File.Delete(directory.File("vocab.json"));
        Refused("vocab.json", "has merges.txt but");
    }

    [Theory]
    [InlineData("tokenizer.model")]
    [InlineData("spiece.model")]
    [InlineData("vocab.txt")]
    public void Foreign_tokenizers_are_refused(string file)
    {
        File.WriteAllText(directory.File(file), "{}");
        Refused(file, "does not implement");
    }

    [Fact]
    public void A_tokenizer_config_of_another_class_without_its_files_is_refused()
    {
        File.WriteAllText(directory.File("tokenizer_config.json"), "{\"tokenizer_class\": \"GPT2Tokenizer\"}");
        Refused("tokenizer_config.json", "tokenizer_class \"GPT2Tokenizer\"");
        File.WriteAllText(directory.File("tokenizer_config.json"), "{\"model_max_length\": 1024}");
        Refused("tokenizer_config.json", "no tokenizer_class");
    }

    [Theory]
    [InlineData("vocab_size", 300)]
    [InlineData("eos_token_id", 0)]
    [InlineData("pad_token_id", 256)]
    public void A_byte_config_with_other_ids_is_refused(string field, int value)
    {
        File.WriteAllText(directory.File("tokenizer_config.json"), $"{{\"tokenizer_class\": \"PrefOnlineByteTokenizer\", \"{field}\": {value}}}");
        Refused("tokenizer_config.json", $"{field} {value}");
    }

    [Fact]
    public void A_missing_directory_is_named()
    {
        var missing = directory.File("nope");
        var error = Assert.Throws<DirectoryNotFoundException>(() => TokenizerLoader.FromDirectory(missing));
        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void A_saved_byte_tokenizer_loads_back_and_names_its_ids()
    {
        var target = directory.File("policy");
        TokenizerLoader.Save(ByteTokenizer.Instance, target);
        Assert.Same(ByteTokenizer.Instance, TokenizerLoader.FromDirectory(target));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(target, "tokenizer_config.json")));
        Assert.Equal("PrefOnlineByteTokenizer", config.RootElement.GetProperty("tokenizer_class").GetString());
        Assert.Equal(256, config.RootElement.GetProperty("eos_token_id").GetInt32());
        Assert.Equal(257, config.RootElement.GetProperty("pad_token_id").GetInt32());
        Assert.Empty(Directory.GetFiles(target, "*.tmp"));
    }

    [Fact]
    public void Saving_bytes_beside_bpe_files_is_refused()
    {
        HandVocabulary.Write(directory.Path, Merges);
        var error = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.Save(ByteTokenizer.Instance, directory.Path));
        Assert.Contains("refusing", error.Message);
    }

    [Fact]
    public void A_saved_bpe_tokenizer_loads_back_with_its_padding_and_added_tokens_and_replaces_a_byte_config()
    {
        var source = directory.File("source");
        Directory.CreateDirectory(source);
        HandVocabulary.Write(source, Merges);
        var padId = HandVocabulary.Vocabulary(Merges).Count;
        File.WriteAllText(Path.Combine(source, "added_tokens.json"), $"{{\"<|pad|>\": {padId}}}");
        File.WriteAllText(Path.Combine(source, "tokenizer_config.json"), "{\"pad_token\": \"<|pad|>\"}");
        var original = Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(source));

        var target = directory.File("target");
        TokenizerLoader.Save(ByteTokenizer.Instance, target); // an older byte policy in the same place
        TokenizerLoader.Save(original, target);
        var reloaded = Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(target));

        Assert.Equal(original.VocabularySize, reloaded.VocabularySize);
        Assert.Equal(original.EndOfSequenceId, reloaded.EndOfSequenceId);
        Assert.Equal(padId, reloaded.PaddingId);
        Assert.Equal(original.MergeCount, reloaded.MergeCount);
        foreach (var bytes in TextCases.Random(seed: 3, count: 200, withInvalidBytes: true))
            Assert.Equal(original.EncodeBytes(bytes), reloaded.EncodeBytes(bytes));
        Assert.False(File.Exists(Path.Combine(target, "vocab.json.tmp")));
    }

    [Fact]
    public void Saving_an_unknown_tokenizer_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => TokenizerLoader.Save(new UnknownTokenizer(), directory.Path));
        Assert.Contains(nameof(UnknownTokenizer), error.Message);
    }

    private sealed class UnknownTokenizer : ITokenizer
    {
        public int VocabularySize => 2;
        public int EndOfSequenceId => 0;
        public int PaddingId => 1;
        public int[] Encode(string text) => [];
        public int[] EncodeBytes(ReadOnlySpan<byte> utf8) => [];
        public string Decode(ReadOnlySpan<int> ids) => "";
        public byte[] DecodeBytes(ReadOnlySpan<int> ids) => [];
    }
}
