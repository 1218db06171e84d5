namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// Polly 8 retry and circuit breaker around producing (after librdkafka's own retries, which already
/// cover every transient error within <see cref="KafkaSinkOptions.DeliveryTimeout"/>).
/// </summary>
public sealed class ProduceResilienceOptions
{
    /// <summary>Further attempts after a transient failure (default 3; 0 disables retrying).</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>First back-off delay; doubles per attempt, with jitter (default 500 ms).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest back-off delay (default 10 s).</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Failure ratio within <see cref="SamplingDuration"/> that opens the circuit (default 0.5).</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Attempts within <see cref="SamplingDuration"/> before the ratio counts (default 10).</summary>
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>Window over which failures are counted (default 30 s).</summary>
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit fails calls at once before letting a trial through (default 10 s).</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(10);

    internal void AddProblems(List<string> problems, string prefix)
    {
        if (MaxRetries is < 0 or > 100) problems.Add($"{prefix}MaxRetries must be in 0..100 (got {MaxRetries})");
        if (RetryBaseDelay <= TimeSpan.Zero) problems.Add($"{prefix}RetryBaseDelay must be positive");
        if (RetryMaxDelay < RetryBaseDelay) problems.Add($"{prefix}RetryMaxDelay must be >= RetryBaseDelay");
        if (FailureRatio is <= 0 or > 1) problems.Add($"{prefix}FailureRatio must be in (0, 1] (got {FailureRatio})");
        if (MinimumThroughput < 2) problems.Add($"{prefix}MinimumThroughput must be at least 2 (got {MinimumThroughput})");
        if (SamplingDuration < TimeSpan.FromMilliseconds(500)) problems.Add($"{prefix}SamplingDuration must be at least 500 ms");
        if (BreakDuration < TimeSpan.FromMilliseconds(500)) problems.Add($"{prefix}BreakDuration must be at least 500 ms");
    }
}
