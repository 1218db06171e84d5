using PrefOnline.Learning.Sampling;

namespace PrefOnline.Worker.Pipeline;

/// <summary>Samples K completions per prompt from the current policy on the tensor thread (role all: the learning state; role generator: the followed policy).</summary>
public interface IRolloutGenerator
{
    /// <summary>The batch, or null when no policy may be sampled right now (none loaded yet, or the learner quiesced after refusing an update).</summary>
    Task<GeneratedBatch?> GenerateAsync(IReadOnlyList<PromptWork> prompts, SamplingOptions options, CancellationToken cancellationToken);
}
