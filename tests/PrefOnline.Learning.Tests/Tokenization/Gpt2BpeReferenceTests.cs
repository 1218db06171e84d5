using System.Diagnostics;
using System.Text;
using PrefOnline.Learning.Tokenization;
using Xunit.Abstractions;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>
/// Token-for-token comparison with OpenAI's encoder.py algorithm (gpt2_bpe_reference.py, run by
/// /usr/bin/python3 with python3-regex) on a vocabulary the reference learned. There is no real GPT-2
/// vocab.json on this machine, so exactness is shown on the algorithm, not on GPT-2's own merges.
/// </summary>
[Collection(TrainedBpeCollection.Name)]
public sealed class Gpt2BpeReferenceTests(TrainedBpeFixture trained, ITestOutputHelper output)
{
    [Fact]
    public void The_trained_files_load_with_gpt2_conventions()
    {
        var tokenizer = trained.Tokenizer;
        Assert.Equal(TrainedBpeFixture.Merges, tokenizer.MergeCount);
        Assert.Equal(tokenizer.VocabularySize - 1, tokenizer.EndOfSequenceId); // last id, like GPT-2's 50256
        Assert.Equal(tokenizer.EndOfSequenceId, tokenizer.PaddingId);
        Assert.IsType<Gpt2BpeTokenizer>(TokenizerLoader.FromDirectory(trained.Directory));
    }

    [Fact]
    public void Matches_encoder_py_on_hand_cases_invalid_bytes_and_random_text()
    {
        var cases = TextCases.Hand.Select(Encoding.UTF8.GetBytes)
            .Concat(TextCases.Bytes)
            .Concat(TextCases.Random(seed: 42, count: 3000, withInvalidBytes: true))
            .Concat(TextCases.TrainingCorpus().Split('\n').Select(Encoding.UTF8.GetBytes))
            .ToList();
        var reference = PythonReference.Encode(trained.Directory, cases);

        var tokenizer = trained.Tokenizer;
        var mismatches = new List<string>();
        for (var i = 0; i < cases.Count; i++)
        {
            var ids = tokenizer.EncodeBytes(cases[i]);
            if (!ids.SequenceEqual(reference.Ids[i]))
                mismatches.Add($"case {i} {Convert.ToHexString(cases[i])}: C# [{string.Join(' ', ids)}] vs encoder.py [{string.Join(' ', reference.Ids[i])}]");
            else if (!Encoding.UTF8.GetBytes(tokenizer.Decode(ids)).SequenceEqual(reference.Decoded[i]))
                mismatches.Add($"case {i} {Convert.ToHexString(cases[i])}: Decode differs from bytes.decode(errors=\"replace\")");
            else if (!tokenizer.DecodeBytes(ids).SequenceEqual(cases[i]))
                mismatches.Add($"case {i} {Convert.ToHexString(cases[i])}: DecodeBytes is not the input");
        }
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of {cases.Count} cases differ:\n{string.Join('\n', mismatches.Take(10))}");
        // The corpus really exercises the merges: most merged tokens (ids 256..) occur in the output.
        var mergedTokensUsed = reference.Ids.SelectMany(ids => ids).Where(id => id >= 256).Distinct().Count();
        output.WriteLine($"{cases.Count} cases; {mergedTokensUsed} of {TrainedBpeFixture.Merges} merged tokens occur");
        Assert.True(mergedTokensUsed > TrainedBpeFixture.Merges * 3 / 4, $"only {mergedTokensUsed} merged tokens occur: the corpus hardly exercises the merges");
    }

    /// <summary>Exactness on a megabyte of English, and the speed measurement reported for the issue:
    /// dotnet test tests/PrefOnline.Learning.Tests --filter "FullyQualifiedName~Megabyte" --logger "console;verbosity=detailed"</summary>
    [Fact]
    public void Matches_encoder_py_on_a_megabyte_of_english()
    {
        var text = TextCases.English(1 << 20);
        var bytes = Encoding.UTF8.GetBytes(text);
        var reference = PythonReference.Encode(trained.Directory, [bytes]);

        var cold = Gpt2BpeTokenizer.FromDirectory(trained.Directory);
        var watch = Stopwatch.StartNew();
        var ids = cold.EncodeBytes(bytes);
        var coldSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var again = cold.Encode(text);
        var warmSeconds = watch.Elapsed.TotalSeconds;

        Assert.Equal(reference.Ids[0], ids);
        Assert.Equal(ids, again);
        Assert.Equal(text, cold.Decode(ids));
        output.WriteLine($"1 MiB English ({ids.Length} tokens, {TrainedBpeFixture.Merges} merges): C# cold cache {coldSeconds * 1000:F0} ms, warm {warmSeconds * 1000:F0} ms; " +
                         $"encoder.py {reference.Seconds * 1000:F0} ms; ratio encoder.py / C# cold = {reference.Seconds / coldSeconds:F1}x");
    }

    [Fact]
    public void Inconsistent_merge_ranks_match_encoder_py()
    {
        // Merges whose results outrank their parts, and self-pairs: the batch-per-rank semantics matter here.
        (string, string)[] merges = [("ab", "a"), ("a", "b"), ("b", "a"), ("ba", "ba"), ("a", "a"), ("aa", "a"), ("b", "b"), ("bb", "ab"), ("Ġ", "a"), ("Ġa", "b")];
        using var directory = new TempDirectory();
        HandVocabulary.Write(directory.Path, merges);
        var random = new Random(11);
        var cases = Enumerable.Range(0, 2000)
            .Select(_ => Encoding.ASCII.GetBytes(new string(Enumerable.Range(0, random.Next(1, 24)).Select(_ => "ab "[random.Next(3)]).ToArray())))
            .ToList();
        var reference = PythonReference.Encode(directory.Path, cases);
        var tokenizer = Gpt2BpeTokenizer.FromDirectory(directory.Path);
        for (var i = 0; i < cases.Count; i++)
            Assert.True(reference.Ids[i].SequenceEqual(tokenizer.EncodeBytes(cases[i])), $"case \"{Encoding.ASCII.GetString(cases[i])}\" differs");
    }

    [Fact]
    public void Character_classes_match_python_regex_on_every_code_point_both_unicode_versions_assign()
    {
        using var directory = new TempDirectory();
        var path = directory.File("classes.txt");
        PythonReference.Run(TimeSpan.FromMinutes(2), "classes", path);
        var python = File.ReadAllText(path);
        Assert.Equal(0x110000, python.Length);

        var differences = new List<string>();
        var newer = 0;
        for (var c = 0; c < 0x110000; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            var rune = new Rune(c);
            var mine = Gpt2PreTokenizer.ClassOf(rune) switch
            {
                Gpt2PreTokenizer.CharClass.Letter => 'L',
                Gpt2PreTokenizer.CharClass.Number => 'N',
                Gpt2PreTokenizer.CharClass.Space => 'S',
                _ => 'O',
            };
            if (char.ToUpperInvariant(python[c]) == mine) continue;
            // Characters one side does not know yet differ by Unicode version, not by definition.
            if (char.IsLower(python[c]) || Rune.GetUnicodeCategory(rune) == System.Globalization.UnicodeCategory.OtherNotAssigned) newer++;
            else differences.Add($"U+{c:X4}: regex {python[c]}, C# {mine}");
        }
        output.WriteLine($"{newer} code points differ only because one Unicode version has not assigned them");
        Assert.True(differences.Count == 0, string.Join('\n', differences.Take(20)));
    }

    [Fact]
    public void A_saved_tokenizer_reads_back_identically_here_and_in_python()
    {
        using var directory = new TempDirectory();
        TokenizerLoader.Save(trained.Tokenizer, directory.Path);
        var reloaded = TokenizerLoader.FromDirectory(directory.Path);
        var cases = TextCases.Random(seed: 5, count: 500, withInvalidBytes: false);
        var reference = PythonReference.Encode(directory.Path, cases);
        for (var i = 0; i < cases.Count; i++)
        {
            var expected = trained.Tokenizer.EncodeBytes(cases[i]);
            Assert.Equal(expected, reloaded.EncodeBytes(cases[i]));
            Assert.Equal(expected, reference.Ids[i]);
        }
        Assert.Equal(trained.Tokenizer.VocabularySize, reloaded.VocabularySize);
        Assert.Equal(trained.Tokenizer.EndOfSequenceId, reloaded.EndOfSequenceId);
    }

    [Fact]
    public void Arbitrary_bytes_round_trip_exactly() =>
        PropertyCheck.ForAll(PropertyCheck.AnyBytes(), bytes => trained.Tokenizer.DecodeBytes(trained.Tokenizer.EncodeBytes(bytes)).AsSpan().SequenceEqual(bytes));

    [Fact]
    public void Utf8_like_bytes_round_trip_exactly_and_decode_as_dotnet_does() =>
        PropertyCheck.ForAll(PropertyCheck.Utf8LikeBytes(), bytes =>
        {
            var ids = trained.Tokenizer.EncodeBytes(bytes);
            return trained.Tokenizer.DecodeBytes(ids).AsSpan().SequenceEqual(bytes) && trained.Tokenizer.Decode(ids) == Encoding.UTF8.GetString(bytes);
        }, tests: 1000);

    [Fact]
    public void Valid_strings_round_trip_exactly() =>
        PropertyCheck.ForAll(PropertyCheck.ValidString(), text => trained.Tokenizer.Decode(trained.Tokenizer.Encode(text)) == text, tests: 1000);

    [Fact]
    public void Any_string_round_trips_with_lone_surrogates_as_replacement_characters() =>
        PropertyCheck.ForAll(PropertyCheck.AnyString(), text =>
            trained.Tokenizer.Decode(trained.Tokenizer.Encode(text)) == Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void Hand_cases_round_trip()
    {
        foreach (var text in TextCases.Hand) Assert.Equal(text, trained.Tokenizer.Decode(trained.Tokenizer.Encode(text)));
        foreach (var bytes in TextCases.Bytes) Assert.Equal(bytes, trained.Tokenizer.DecodeBytes(trained.Tokenizer.EncodeBytes(bytes)));
    }
}
