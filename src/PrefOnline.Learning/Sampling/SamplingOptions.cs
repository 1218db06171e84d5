namespace PrefOnline.Learning.Sampling;

/// <summary>
/// How <see cref="PolicySampler"/> samples. Defaults are plain ancestral sampling (temperature 1,
/// no truncation), whose sampler log-probs equal the policy's.
/// </summary>
public sealed record SamplingOptions
{
    public const int MaxStopStrings = 16;
    public const int MaxStopStringBytes = 256;
    public const int MaxBatchSize = 4096;

    /// <summary>Completions per prompt (K). The prompt is run through the model once and shared.</summary>
    public int SamplesPerPrompt { get; init; } = 1;

    /// <summary>Logits are divided by it before sampling; 0 means greedy decoding.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Sample only among the k most likely tokens; 0 = off, 1 = greedy. Applied after temperature.</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: only the smallest set of most likely tokens whose probability reaches
    /// top-p (renormalised), after temperature and top-k; 1 = off.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Upper bound on the completion's tokens (the end-of-sequence token counts).</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>A completion ends at the first occurrence of any of these; the text is cut before it.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Same seed, weights and options ⇒ same completions, whatever <see cref="BatchSize"/>
    /// is. Null draws a fresh random seed per call (each completion still reports its own seed).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Rows (prompt × sample) decoded together in one native call; bounds the KV cache memory.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Every problem at once, or an empty list. With a context length, also checks that a
    /// completion of <see cref="MaxNewTokens"/> leaves room for a prompt.</summary>
    public IReadOnlyList<string> Problems(int? contextLength = null)
    {
        var problems = new List<string>();
        if (SamplesPerPrompt < 1) problems.Add($"samples per prompt {SamplesPerPrompt} must be at least 1");
        if (!double.IsFinite(Temperature) || Temperature < 0) problems.Add($"temperature {Temperature} must be a finite number >= 0 (0 = greedy)");
        if (TopK < 0) problems.Add($"top-k {TopK} must be >= 0 (0 = off)");
        if (!(TopP > 0 && TopP <= 1)) problems.Add($"top-p {TopP} must be in (0, 1] (1 = off)");
        if (MaxNewTokens < 1) problems.Add($"max new tokens {MaxNewTokens} must be at least 1");
        else if (contextLength is { } context && MaxNewTokens >= context)
            problems.Add($"max new tokens {MaxNewTokens} must be below the model's context length {context} (a prompt needs at least one token)");
        if (BatchSize < 1 || BatchSize > MaxBatchSize) problems.Add($"batch size {BatchSize} must be in [1, {MaxBatchSize}]");
        if (StopStrings is null) problems.Add("stop strings must not be null (use an empty list)");
        else
        {
            if (StopStrings.Count > MaxStopStrings) problems.Add($"{StopStrings.Count} stop strings given; at most {MaxStopStrings} are allowed");
            for (var i = 0; i < StopStrings.Count; i++)
            {
                var s = StopStrings[i];
                if (string.IsNullOrEmpty(s)) problems.Add($"stop string {i} is empty");
                else if (System.Text.Encoding.UTF8.GetByteCount(s) > MaxStopStringBytes) problems.Add($"stop string {i} is longer than {MaxStopStringBytes} bytes");
            }
        }
        return problems;
    }

    /// <summary>This, or an <see cref="ArgumentException"/> naming every problem.</summary>
    public SamplingOptions Validated(int? contextLength = null)
    {
        var problems = Problems(contextLength);
        return problems.Count == 0 ? this : throw new ArgumentException($"invalid sampling options: {string.Join("; ", problems)}");
    }
}
