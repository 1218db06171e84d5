using System.Text.Json.Nodes;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>
/// Byte-level BPE tokenizer.json files written by <see cref="ByteLevelBpeTokenizerWriter"/> from the GPL-3 text
/// and the hand cases, with five special tokens, in three flavours of real checkpoints:
/// <list type="bullet">
/// <item>gpt2: as written (ByteLevel pre-tokenizer with GPT-2's regex, merges as ["a", "b"] arrays);</item>
/// <item>llama3: Llama 3's Split regex then ByteLevel without regex, ignore_merges, merges as "a b" strings,
///   and a non-special added token "&lt;think&gt;" (as Qwen3 has);</item>
/// <item>smollm: Digits (individual) then ByteLevel with GPT-2's regex.</item>
/// </list>
/// </summary>
public sealed class WrittenTokenizerFixture : IDisposable
{
    public const int VocabularySize = 1000;

    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static readonly ByteLevelBpeSpecialTokens Specials = new("<|endoftext|>", "<|begin_of_text|>", "<|pad|>", ["<|im_start|>", "<|im_end|>"]);

    private readonly TempDirectory root = new();

    public WrittenTokenizerFixture()
    {
        Tokenizer = ByteLevelBpeTokenizerWriter.Write(Flavour("gpt2"), VocabularySize, Specials, TextCases.TrainingCorpus());

        Variant("llama3", json =>
        {
            json["pre_tokenizer"] = JsonNode.Parse($$"""
                {"type": "Sequence", "pretokenizers": [
                  {"type": "Split", "pattern": {"Regex": {{JsonValue.Create(Llama3Pattern).ToJsonString()}}}, "behavior": "Isolated", "invert": false},
                  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
                """);
            var model = json["model"]!;
            model["ignore_merges"] = true;
            model["merges"] = new JsonArray(model["merges"]!.AsArray().Select(m => (JsonNode)JsonValue.Create($"{m![0]} {m[1]}")).ToArray());
            json["added_tokens"]!.AsArray().Add(JsonNode.Parse($$"""{"id": {{VocabularySize}}, "content": "<think>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}"""));
        });
        Variant("smollm", json => json["pre_tokenizer"] = JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": true},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}
            """));
    }

    /// <summary>The writer's own output (the gpt2 flavour).</summary>
    public HuggingFaceBpeTokenizer Tokenizer { get; }

    /// <summary>The directory of a flavour: gpt2, llama3 or smollm.</summary>
    public string Flavour(string name) => Path.Combine(root.Path, name);

    /// <summary>The written corpus' tokenizer.json as JSON, for tests that make broken or other variants.</summary>
    public JsonNode WrittenJson() => JsonNode.Parse(File.ReadAllText(Path.Combine(Flavour("gpt2"), "tokenizer.json")))!;

    private void Variant(string name, Action<JsonNode> change)
    {
        var directory = Flavour(name);
        Directory.CreateDirectory(directory);
        var json = WrittenJson();
        change(json);
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), json.ToJsonString());
        File.Copy(Path.Combine(Flavour("gpt2"), "tokenizer_config.json"), Path.Combine(directory, "tokenizer_config.json"));
    }

    public void Dispose() => root.Dispose();
}

[CollectionDefinition(Name)]
public sealed class WrittenTokenizerCollection : ICollectionFixture<WrittenTokenizerFixture>
{
    public const string Name = "written tokenizer.json";
}
