using PrefOnline.Learning.Configuration;
using PrefOnline.Learning.Sampling;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Configuration section <c>Generation</c>: how the current policy answers prompts (roles all and
/// generator). K samples per prompt give the scorer a group to compare: on-policy pairs (best vs worst)
/// and leave-one-out baselines both need K ≥ 2.
/// </summary>
public sealed class GenerationOptions : IValidatedOptions
{
    public const string SectionName = "Generation";

    /// <summary>K: completions sampled per prompt.</summary>
    public int SamplesPerPrompt { get; set; } = 4;

    /// <summary>Sampling temperature (1 = the policy's own distribution, whose log-probs are the behaviour log-probs exactly; 0 = greedy).</summary>
    public double Temperature { get; set; } = 1.0;

    /// <summary>Top-k truncation (0 = off).</summary>
    public int TopK { get; set; }

    /// <summary>Nucleus truncation (1 = off).</summary>
    public double TopP { get; set; } = 1.0;

    /// <summary>Longest completion in tokens (the end-of-sequence token counts).</summary>
    public int MaxNewTokens { get; set; } = 48;

    /// <summary>A completion ends before the first occurrence of any of these (none by default: completions end with the end-of-sequence token).</summary>
    public List<string> StopStrings { get; set; } = [];

    /// <summary>Most prompts generated together in one batch (the decoder batches their K samples).</summary>
    public int MaxPromptsPerBatch { get; set; } = 8;

    /// <summary>How long the generator waits for more prompts to fill a batch once it has one.</summary>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Prompts read ahead of generation (a bounded channel: a busy generator stops the prompt consumer).</summary>
    public int QueueCapacity { get; set; } = 64;

    /// <summary>Rows decoded together (one KV cache; bounds its memory).</summary>
    public int DecodeBatchSize { get; set; } = 32;

    /// <summary>Base seed of sampling; each batch gets its own seed derived from it and a batch counter.</summary>
    public ulong Seed { get; set; } = 7;

    /// <summary>The sampler's options for one batch.</summary>
    public SamplingOptions ToSamplingOptions(ulong batchSeed) => new()
    {
        SamplesPerPrompt = SamplesPerPrompt,
        Temperature = Temperature,
        TopK = TopK,
        TopP = TopP,
        MaxNewTokens = MaxNewTokens,
        StopStrings = StopStrings.ToArray(),
        BatchSize = DecodeBatchSize,
        Seed = batchSeed,
    };

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(SamplesPerPrompt), SamplesPerPrompt, 1, 256);
        p.Range(nameof(MaxPromptsPerBatch), MaxPromptsPerBatch, 1, 1024);
        p.Duration(nameof(BatchWindow), BatchWindow, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        p.Range(nameof(QueueCapacity), QueueCapacity, 1, 100_000);
        foreach (var problem in ToSamplingOptions(0).Problems())
        {
            // The sampler names its fields in prose; say which key to change.
            var key = problem.StartsWith("samples per prompt", StringComparison.Ordinal) ? nameof(SamplesPerPrompt)
                : problem.StartsWith("temperature", StringComparison.Ordinal) ? nameof(Temperature)
                : problem.StartsWith("top-k", StringComparison.Ordinal) ? nameof(TopK)
                : problem.StartsWith("top-p", StringComparison.Ordinal) ? nameof(TopP)
                : problem.StartsWith("max new tokens", StringComparison.Ordinal) ? nameof(MaxNewTokens)
                : problem.StartsWith("batch size", StringComparison.Ordinal) ? nameof(DecodeBatchSize)
                : nameof(StopStrings);
            if (key == nameof(SamplesPerPrompt) && (SamplesPerPrompt < 1 || SamplesPerPrompt > 256)) continue; // already reported
            p.AddRaw($"{SectionName}:{key}: {problem}");
        }
        return p.Items;
    }
}
