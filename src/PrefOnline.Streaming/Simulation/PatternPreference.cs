namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Users who like (or dislike) a pattern: U = ± <see cref="NatsPerOccurrence"/> × (number of
/// non-overlapping ordinal occurrences of <see cref="Pattern"/>, capped at <see cref="MaxOccurrences"/>).
/// Works with fixed-length generation; pick a pattern the reference corpus rarely contains (e.g. "!")
/// so the preferred region has low reference mass, as in the paper.
/// </summary>
public sealed class PatternPreference : IHiddenPreference
{
    public PatternPreference(string pattern, bool prefer = true, double natsPerOccurrence = 2, int maxOccurrences = 5)
    {
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        if (!double.IsFinite(natsPerOccurrence) || natsPerOccurrence <= 0) throw new ArgumentOutOfRangeException(nameof(natsPerOccurrence), natsPerOccurrence, "must be a positive number");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOccurrences, 1);
        Pattern = pattern;
        Prefer = prefer;
        NatsPerOccurrence = natsPerOccurrence;
        MaxOccurrences = maxOccurrences;
    }

    public string Pattern { get; }

    /// <summary>True: more occurrences are better; false: every occurrence costs utility.</summary>
    public bool Prefer { get; }

    public double NatsPerOccurrence { get; }

    /// <summary>Occurrences beyond this add nothing (so degenerate repetition is not rewarded without bound).</summary>
    public int MaxOccurrences { get; }

    public string Description => $"{(Prefer ? "contains" : "avoids")} \"{Pattern}\" ({NatsPerOccurrence:0.##} nats each, max {MaxOccurrences})";

    public double Utility(string prompt, string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var count = 0;
        for (var at = completion.IndexOf(Pattern, StringComparison.Ordinal); at >= 0 && count < MaxOccurrences; at = completion.IndexOf(Pattern, at + Pattern.Length, StringComparison.Ordinal))
        {
            count++;
        }
        var utility = count * NatsPerOccurrence;
        return Prefer ? utility : -utility;
    }
}
