using System.Text;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>The BPE tokenizer on hand-built vocabularies, where every expected id can be worked out by hand.</summary>
public sealed class Gpt2BpeTokenizerTests
{
    // " the" → Ġ t h e → (Ġ,t) → Ġt h e → (h,e) → Ġt he → (Ġt,he) → Ġthe.
    private static readonly (string, string)[] TheMerges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("t", "he")];

    private readonly Gpt2BpeTokenizer the = HandVocabulary.Tokenizer(TheMerges);

    private int Id(string token) => the.IdOf(token) ?? throw new KeyNotFoundException(token);

    [Fact]
    public void Byte_symbols_follow_gpt2_bytes_to_unicode()
    {
        Assert.Equal('Ġ', Gpt2ByteSymbols.OfByte[' ']);
        Assert.Equal('Ċ', Gpt2ByteSymbols.OfByte['\n']);
        Assert.Equal('Ā', Gpt2ByteSymbols.OfByte[0]);
        Assert.Equal('!', Gpt2ByteSymbols.OfByte['!']);
        Assert.Equal('ÿ', Gpt2ByteSymbols.OfByte[0xFF]);
        Assert.Equal('Ń', Gpt2ByteSymbols.OfByte[0xAD]); // the last remapped byte (soft hyphen) → U+0143
        Assert.Equal(256, Gpt2ByteSymbols.OfByte.Distinct().Count());
    }

    [Fact]
    public void Merges_apply_by_rank()
    {
        Assert.Equal([Id("Ġthe")], the.Encode(" the"));
        Assert.Equal([Id("the")], the.Encode("the"));
        Assert.Equal([Id("the"), Id("Ġthe"), Id("Ġthe")], the.Encode("the the the"));
        Assert.Equal([Id("Ġt"), Id("h")], the.Encode(" th"));
        Assert.Equal([Id("t"), Id("Ġ"), Id("he"), Id("Ġthe")], the.Encode("t he the")); // (Ġ,h) has no rank
    }

    [Fact]
    public void A_chosen_pair_is_merged_everywhere_left_to_right_without_overlap()
    {
        // encoder.py: "aaa" with (a,a) → [aa, a]; then (aa,a) can merge.
        var tokenizer = HandVocabulary.Tokenizer(("a", "a"));
        Assert.Equal([tokenizer.IdOf("aa")!.Value, tokenizer.IdOf("a")!.Value], tokenizer.Encode("aaa"));
        Assert.Equal([tokenizer.IdOf("aa")!.Value, tokenizer.IdOf("aa")!.Value], tokenizer.Encode("aaaa"));

        // Inconsistent ranks: (ab,a) outranks (a,b), yet encoder.py merges every (a,b) first in one pass:
        // "abab" → [ab, ab], not [aba, b].
        var odd = HandVocabulary.Tokenizer(("ab", "a"), ("a", "b"));
        Assert.Equal([odd.IdOf("ab")!.Value, odd.IdOf("ab")!.Value], odd.Encode("abab"));
        Assert.Equal([odd.IdOf("aba")!.Value], odd.Encode("aba"));
    }

    [Fact]
    public void End_of_sequence_and_padding_follow_hugging_face_gpt2()
    {
        var eos = Id("<|endoftext|>");
        Assert.Equal(eos, the.EndOfSequenceId);
        Assert.Equal(eos, the.PaddingId);
        Assert.Equal(eos + 1, the.VocabularySize);
        Assert.Equal(256 + 4, eos); // bytes, then merge results, then <|endoftext|>, as GPT-2's 50256
    }

    [Fact]
    public void Special_token_text_is_encoded_as_plain_text_and_special_ids_decode_to_nothing()
    {
        var ids = the.Encode("say <|endoftext|> now");
        Assert.DoesNotContain(the.EndOfSequenceId, ids);
        Assert.Equal("say <|endoftext|> now", the.Decode(ids));
        Assert.Equal("ab", the.Decode([Id("a"), the.EndOfSequenceId, Id("b")]));
        Assert.Equal("ab"u8.ToArray(), the.DecodeBytes([the.EndOfSequenceId, Id("a"), Id("b"), the.PaddingId]));
    }

    [Fact]
    public void Invalid_utf8_gives_replacement_characters_in_decode_and_exact_bytes_in_decode_bytes()
    {
        byte[] bytes = [0x20, 0x74, 0x68, 0x65, 0xED, 0xA0, 0x80, 0xE2, 0x82, 0x41];
        var ids = the.EncodeBytes(bytes);
        Assert.Equal(Id("Ġthe"), ids[0]);
        Assert.Equal(bytes, the.DecodeBytes(ids));
        Assert.Equal(" the\uFFFD\uFFFD\uFFFD\uFFFDA", the.Decode(ids));
    }

    [Fact]
    public void Encode_of_a_string_equals_encode_of_its_utf8_and_lone_surrogates_become_replacement_characters()
    {
        foreach (var text in TextCases.Hand) Assert.Equal(the.EncodeBytes(Encoding.UTF8.GetBytes(text)), the.Encode(text));
        Assert.Equal("a\uFFFDb", the.Decode(the.Encode("a\uD800b")));
    }

    [Fact]
    public void Ids_outside_the_vocabulary_are_refused()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => the.Decode([the.VocabularySize]));
        Assert.Contains(the.VocabularySize.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => the.DecodeBytes([-5]));
    }

    [Fact]
    public void Long_pieces_stay_fast_and_exact()
    {
        // A 100 KB run of spaces and a 100 KB word are single pre-tokens; quadratic merging (encoder.py's) would take minutes.
        var spaces = HandVocabulary.Tokenizer(("Ġ", "Ġ"), ("ĠĠ", "ĠĠ"), ("ĠĠĠĠ", "ĠĠĠĠ"), ("a", "b"), ("ab", "ab"), ("abab", "abab"));
        var run = new string(' ', 100_000);
        var ids = spaces.Encode(run);
        Assert.Equal(100_000 / 8, ids.Length);
        Assert.All(ids, id => Assert.Equal(spaces.IdOf("ĠĠĠĠĠĠĠĠ"), id));
        Assert.Equal(run, spaces.Decode(ids));

        var word = string.Concat(Enumerable.Repeat("ab", 50_000)) + "a";
        var wordIds = spaces.Encode(word);
        Assert.Equal(50_000 / 4 + 1, wordIds.Length);
        Assert.Equal(word, spaces.Decode(wordIds));
    }

    [Fact]
    public void A_tiny_cache_gives_the_same_ids_as_a_large_one_and_concurrent_use_is_safe()
    {
        var vocabulary = HandVocabulary.Vocabulary(TheMerges);
        var small = new Gpt2BpeTokenizer(vocabulary, TheMerges, cacheCapacity: 2);
        var none = new Gpt2BpeTokenizer(vocabulary, TheMerges, cacheCapacity: 0);
        var cases = TextCases.Random(seed: 7, count: 300, withInvalidBytes: true);
        var expected = cases.Select(c => the.EncodeBytes(c)).ToList();
        for (var i = 0; i < cases.Count; i++)
        {
            Assert.Equal(expected[i], small.EncodeBytes(cases[i]));
            Assert.Equal(expected[i], none.EncodeBytes(cases[i]));
        }

        var shared = new Gpt2BpeTokenizer(vocabulary, TheMerges, cacheCapacity: 16);
        var results = new int[cases.Count][];
        Parallel.For(0, cases.Count * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var ids = shared.EncodeBytes(cases[i % cases.Count]);
            if (i < cases.Count) results[i] = ids;
            else Assert.Equal(expected[i % cases.Count], ids);
        });
        Assert.Equal(expected, results);
    }

    [Fact]
    public void In_memory_construction_names_the_bad_merge()
    {
        var vocabulary = HandVocabulary.Vocabulary([("a", "b")]);
        var error = Assert.Throws<ArgumentException>(() => new Gpt2BpeTokenizer(vocabulary, [("a", "b"), ("x", "y")]));
        Assert.Contains("merge #2", error.Message);
        Assert.Contains("\"xy\"", error.Message);
    }
}
