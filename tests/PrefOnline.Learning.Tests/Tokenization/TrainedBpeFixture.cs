using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>
/// A GPT-2-format vocab.json + merges.txt with 500 merges, learned once by the Python reference on
/// English license text plus code and multilingual samples (no real GPT-2 vocabulary is on this
/// machine and there is no network). Shared by the cross-check tests through a collection fixture.
/// </summary>
public sealed class TrainedBpeFixture : IDisposable
{
    public const int Merges = 500;

    private readonly TempDirectory directory = new();

    public TrainedBpeFixture()
    {
        var corpus = directory.File("corpus.txt");
        File.WriteAllText(corpus, TextCases.TrainingCorpus());
        var learned = PythonReference.Run(TimeSpan.FromMinutes(2), "train", corpus, directory.Path, Merges.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(Merges.ToString(System.Globalization.CultureInfo.InvariantCulture), learned.Trim());
        File.Delete(corpus);
        Tokenizer = Gpt2BpeTokenizer.FromDirectory(directory.Path);
    }

    /// <summary>Holds vocab.json and merges.txt only.</summary>
    public string Directory => directory.Path;

    public Gpt2BpeTokenizer Tokenizer { get; }

    public void Dispose() => directory.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TrainedBpeCollection : ICollectionFixture<TrainedBpeFixture>
{
    public const string Name = "trained GPT-2 BPE";
}
