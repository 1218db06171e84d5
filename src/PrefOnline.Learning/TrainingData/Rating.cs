namespace PrefOnline.Learning.TrainingData;

/// <summary>
/// One scalar judgement of one completion (prefonline.rating.v1): <see cref="Value"/> on the rating
/// scale the deployment configures (e.g. 0–1 or 1–5 stars).
/// </summary>
public sealed record Rating
{
    public required string Id { get; init; }

    public required string Prompt { get; init; }

    public required string Completion { get; init; }

    public required double Value { get; init; }

    /// <summary>The rollout the rating is about, when it names one.</summary>
    public string? RolloutId { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that cannot be trained on.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Id)) throw new ArgumentException("rating id is empty", nameof(Id));
        if (Prompt is null || Completion is null) throw new ArgumentException($"rating {Id}: prompt and completion text are required");
        if (!double.IsFinite(Value)) throw new ArgumentException($"rating {Id}: value {Value} is not finite", nameof(Value));
    }
}
