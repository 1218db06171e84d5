using System.Text;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

public sealed class ByteTokenizerTests
{
    private readonly ByteTokenizer tokenizer = ByteTokenizer.Instance;

    [Fact]
    public void Ids_are_byte_values_then_end_of_sequence_and_padding()
    {
        Assert.Equal(258, tokenizer.VocabularySize);
        Assert.Equal(256, tokenizer.EndOfSequenceId);
        Assert.Equal(257, tokenizer.PaddingId);
        Assert.Equal(Gpt2Config.Tiny().VocabularySize, tokenizer.VocabularySize);
        Assert.Equal([0x68, 0x69, 0x20, 0xC3, 0xA9], tokenizer.Encode("hi é"));
        Assert.Equal([0xF0, 0x9F, 0x98, 0x80], tokenizer.Encode("😀"));
        Assert.Empty(tokenizer.Encode(""));
    }

    [Fact]
    public void Arbitrary_bytes_round_trip_exactly() =>
        PropertyCheck.ForAll(PropertyCheck.AnyBytes(), bytes =>
        {
            var ids = tokenizer.EncodeBytes(bytes);
            return ids.All(id => id is >= 0 and < 256) && tokenizer.DecodeBytes(ids).AsSpan().SequenceEqual(bytes);
        });

    [Fact]
    public void Utf8_like_bytes_round_trip_exactly_and_decode_as_dotnet_does() =>
        PropertyCheck.ForAll(PropertyCheck.Utf8LikeBytes(), bytes =>
        {
            var ids = tokenizer.EncodeBytes(bytes);
            return tokenizer.DecodeBytes(ids).AsSpan().SequenceEqual(bytes)
                   && tokenizer.Decode(ids) == Encoding.UTF8.GetString(bytes);
        });

    [Fact]
    public void Valid_strings_round_trip_exactly() =>
        PropertyCheck.ForAll(PropertyCheck.ValidString(), text => tokenizer.Decode(tokenizer.Encode(text)) == text);

    [Fact]
    public void Any_string_round_trips_with_lone_surrogates_as_replacement_characters() =>
        PropertyCheck.ForAll(PropertyCheck.AnyString(), text =>
            tokenizer.Decode(tokenizer.Encode(text)) == Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void Hand_cases_round_trip()
    {
        foreach (var text in TextCases.Hand)
        {
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
            Assert.Equal(Encoding.UTF8.GetByteCount(text), tokenizer.Encode(text).Length);
        }
        foreach (var bytes in TextCases.Bytes)
        {
            Assert.Equal(bytes, tokenizer.DecodeBytes(tokenizer.EncodeBytes(bytes)));
        }
    }

    [Fact]
    public void Invalid_utf8_decodes_to_replacement_characters_and_exact_bytes()
    {
        byte[] surrogate = [0x61, 0xED, 0xA0, 0x80, 0x62]; // 'a', U+D800 as WTF-8, 'b'
        var ids = tokenizer.EncodeBytes(surrogate);
        Assert.Equal("a\uFFFD\uFFFD\uFFFDb", tokenizer.Decode(ids));
        Assert.Equal(surrogate, tokenizer.DecodeBytes(ids));
        Assert.Equal("\uFFFDA", tokenizer.Decode(tokenizer.EncodeBytes([0xE2, 0x82, 0x41]))); // one U+FFFD per maximal invalid subsequence
    }

    [Fact]
    public void Special_tokens_are_dropped_by_decode_and_never_produced_by_encode()
    {
        Assert.Equal("ab", tokenizer.Decode([97, 256, 257, 98]));
        Assert.Equal("ab"u8.ToArray(), tokenizer.DecodeBytes([257, 97, 98, 256]));
        Assert.DoesNotContain(256, tokenizer.Encode("<|endoftext|>"));
        Assert.Equal("<|endoftext|>", tokenizer.Decode(tokenizer.Encode("<|endoftext|>")));
    }

    [Fact]
    public void Ids_outside_the_vocabulary_are_refused_with_the_id_named()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([97, 258]));
        Assert.Contains("258", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.DecodeBytes([-1]));
    }
}
