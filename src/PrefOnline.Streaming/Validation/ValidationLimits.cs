namespace PrefOnline.Streaming.Validation;

/// <summary>
/// Configurable bounds of the validator (bind from configuration; call <see cref="Problems"/> at
/// start-up to refuse bad settings with one line each). Defaults suit a small model's text sizes and
/// keep one record's cost bounded: every limit caps CPU and memory an adversarial producer can consume.
/// </summary>
public sealed class ValidationLimits
{
    /// <summary>Largest record accepted, in bytes (default 256 KiB; Kafka's default max is 1 MiB).</summary>
    public int MaxRecordBytes { get; set; } = 256 * 1024;

    /// <summary>Longest text field (prompt, chosen, rejected, completion, reason), in UTF-16 code units (default 32,768).</summary>
    public int MaxTextChars { get; set; } = 32 * 1024;

    /// <summary>Longest id (id, prompt_id, rollout_id, rollout_ids[i]), in UTF-16 code units (default 256).</summary>
    public int MaxIdLength { get; set; } = 256;

    /// <summary>Deepest nesting of objects/arrays; the record's own object is depth 1 (default 16). Parsing is iterative, so no depth can overflow the stack; this bounds work.</summary>
    public int MaxJsonDepth { get; set; } = 16;

    /// <summary>Largest <c>meta</c> object, in bytes of its JSON text (default 4 KiB).</summary>
    public int MaxMetaBytes { get; set; } = 4 * 1024;

    /// <summary>Largest |reward| of a rating (default 1e6): finite but absurd rewards would dominate a reward-model batch.</summary>
    public double MaxAbsReward { get; set; } = 1e6;

    /// <summary>
    /// The deployment's rating scale [min, max]: a rating outside it is refused as <c>out-of-range</c>
    /// (inclusive bounds; null = only <see cref="MaxAbsReward"/> applies). Not part of the <c>Validation</c>
    /// section (a method, not a property, so the configuration binder neither binds nor silently accepts a key
    /// for it): the worker sets it from <c>Reward:RatingMin</c>/<c>RatingMax</c>, the scale the reward model maps
    /// ratings onto, with <see cref="WithRatingScale"/>.
    /// </summary>
    public (double Min, double Max)? GetRatingScale() => ratingScale;

    private (double Min, double Max)? ratingScale;

    /// <summary>A copy of these limits that refuses ratings outside [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public ValidationLimits WithRatingScale(double min, double max)
    {
        var copy = Clone();
        copy.ratingScale = (min, max);
        return copy;
    }

    /// <summary>Top-level fields the schema does not define (default <see cref="UnknownFieldPolicy.Reject"/>; see there).</summary>
    public UnknownFieldPolicy UnknownFields { get; set; } = UnknownFieldPolicy.Reject;

    /// <summary>How many recent ids the duplicate window remembers (default 100,000; 0 disables duplicate detection).</summary>
    public int DuplicateWindowSize { get; set; } = 100_000;

    /// <summary>How long an id stays in the duplicate window (default 1 hour).</summary>
    public TimeSpan DuplicateWindowTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>One line per invalid setting; empty when the limits are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (MaxRecordBytes < 64) problems.Add($"MaxRecordBytes must be at least 64 (got {MaxRecordBytes})");
        if (MaxTextChars < 1) problems.Add($"MaxTextChars must be at least 1 (got {MaxTextChars})");
        if (MaxIdLength is < 1 or > Contracts.ContractRules.AbsoluteMaxIdLength) problems.Add($"MaxIdLength must be in 1..{Contracts.ContractRules.AbsoluteMaxIdLength} (got {MaxIdLength})");
        if (MaxJsonDepth is < 2 or > 256) problems.Add($"MaxJsonDepth must be in 2..256 (got {MaxJsonDepth})");
        if (MaxMetaBytes < 2) problems.Add($"MaxMetaBytes must be at least 2 (got {MaxMetaBytes})");
        if (!double.IsFinite(MaxAbsReward) || MaxAbsReward <= 0) problems.Add($"MaxAbsReward must be a positive finite number (got {MaxAbsReward})");
        if (!Enum.IsDefined(UnknownFields)) problems.Add($"UnknownFields must be Reject or Ignore (got {UnknownFields})");
        if (DuplicateWindowSize < 0) problems.Add($"DuplicateWindowSize must be >= 0 (got {DuplicateWindowSize})");
        if (DuplicateWindowTtl <= TimeSpan.Zero) problems.Add($"DuplicateWindowTtl must be positive (got {DuplicateWindowTtl})");
        if (ratingScale is var (min, max) && (!double.IsFinite(min) || !double.IsFinite(max) || !(max > min)))
        {
            problems.Add($"the rating scale must be finite with max > min (got [{min}, {max}])");
        }
        return problems;
    }

    /// <summary>A copy, so a validator's limits cannot change under it.</summary>
    public ValidationLimits Clone() => (ValidationLimits)MemberwiseClone();
}
