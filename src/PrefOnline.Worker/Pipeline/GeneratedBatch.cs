namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// What one generation step produced. <see cref="PolicyVersion"/> is the published version (what rollout
/// records carry); <see cref="UpdateCount"/> is the learner's update counter the replay buffer measures
/// staleness in (equal to nothing outside; only role all knows it, 0 elsewhere).
/// </summary>
public sealed record GeneratedBatch(IReadOnlyList<GeneratedPrompt> Prompts, long PolicyVersion, long UpdateCount, DateTimeOffset GeneratedAt)
{
    public long CompletionTokens => Prompts.Sum(p => p.Completions.Sum(c => (long)c.Tokens.Length));
}
