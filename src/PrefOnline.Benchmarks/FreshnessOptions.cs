using PrefOnline.Learning.Models;

namespace PrefOnline.Benchmarks;

/// <summary>The load and worker shape of <see cref="FreshnessMeasurement"/>; everything seeded.</summary>
public sealed record FreshnessOptions
{
    /// <summary>The policy: a seeded random byte-level GPT (freshness depends on update cost, not on what was learnt).</summary>
    public Gpt2Config Model { get; init; } = new() { VocabularySize = 258, Layers = 2, Heads = 2, Width = 64, ContextLength = 128 };

    public ulong Seed { get; init; } = 7;

    /// <summary>K (Generation:SamplesPerPrompt); the users label each group of K.</summary>
    public int SamplesPerPrompt { get; init; } = 4;

    public int MaxNewTokens { get; init; } = 16;

    /// <summary>Learner:UpdateInterval, the reference of the goal (p99 ≤ interval + 2 s). Learner:UpdateEverySamples stays at its default.</summary>
    public TimeSpan UpdateInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Prompts the simulated users ask per second (one preference label per answered prompt).</summary>
    public double PromptsPerSecond { get; init; } = 4;

    /// <summary>Labels whose freshness one round measures.</summary>
    public int LabelsPerRound { get; init; } = 32;
}
