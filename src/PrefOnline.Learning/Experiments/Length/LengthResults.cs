namespace PrefOnline.Learning.Experiments.Length;

/// <summary>Everything a length experiment produced.</summary>
public sealed record LengthResults(
    LengthOptions Options,
    LengthCorpus Corpus,
    IReadOnlyList<LengthReferenceStats> References,
    IReadOnlyList<LengthRunResult> Runs,
    IReadOnlyList<LengthSummary> Summaries,
    double Seconds);
