using PrefOnline.Learning.Sampling;

namespace PrefOnline.Worker.Pipeline;

/// <summary>One prompt's K completions and the ids they were published under.</summary>
public sealed record GeneratedPrompt(PromptWork Work, IReadOnlyList<SampledCompletion> Completions, IReadOnlyList<string> RolloutIds);
