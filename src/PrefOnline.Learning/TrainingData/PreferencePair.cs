using System.Collections.Immutable;

namespace PrefOnline.Learning.TrainingData;

/// <summary>
/// One preference: for <see cref="Prompt"/>, <see cref="Chosen"/> is better than <see cref="Rejected"/>.
/// Either a person said so (prefonline.preference.v1) or it was built on-policy from scored rollouts
/// (then the rollout ids and the reward gap are set). Token arrays may be empty until the learner
/// tokenizes the texts.
/// </summary>
/// <remarks>Immutable; equality is by value, token arrays included.</remarks>
public sealed record PreferencePair
{
    public required string Id { get; init; }

    /// <summary>The prompt's id when known (on-policy pairs; human pairs may not carry one).</summary>
    public string? PromptId { get; init; }

    public required string Prompt { get; init; }

    public required string Chosen { get; init; }

    public required string Rejected { get; init; }

    public ImmutableArray<int> PromptTokens { get; init; } = [];

    public ImmutableArray<int> ChosenTokens { get; init; } = [];

    public ImmutableArray<int> RejectedTokens { get; init; } = [];

    public required PairSource Source { get; init; }

    public string? ChosenRolloutId { get; init; }

    public string? RejectedRolloutId { get; init; }

    /// <summary>r(chosen) − r(rejected) when the pair was built from rewards; null for human pairs.</summary>
    public double? RewardGap { get; init; }

    /// <summary>The policy current when the pair arrived (human) or whose samples it compares (on-policy),
    /// counted in the learner's updates (<see cref="Training.Learner.UpdateCount"/>): the replay buffer's
    /// staleness limit reads this.</summary>
    public required long UpdateCount { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that cannot be trained on.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Id)) throw new ArgumentException("pair id is empty", nameof(Id));
        if (Prompt is null || Chosen is null || Rejected is null) throw new ArgumentException($"pair {Id}: prompt, chosen and rejected text are required");
        if (Chosen == Rejected) throw new ArgumentException($"pair {Id}: chosen and rejected are the same text, which carries no preference", nameof(Rejected));
        if (PromptTokens.IsDefault || ChosenTokens.IsDefault || RejectedTokens.IsDefault)
            throw new ArgumentException($"pair {Id}: token arrays must be set (use an empty array, not default)");
        if (!Enum.IsDefined(Source)) throw new ArgumentException($"pair {Id}: unknown source {(int)Source}", nameof(Source));
        if (RewardGap is { } gap && !(gap >= 0 && double.IsFinite(gap)))
            throw new ArgumentException($"pair {Id}: reward gap {gap} must be a finite number ≥ 0", nameof(RewardGap));
        if (UpdateCount < 0) throw new ArgumentException($"pair {Id}: update count {UpdateCount} is negative", nameof(UpdateCount));
    }

    public bool Equals(PreferencePair? other) =>
        other is not null
        && Id == other.Id && PromptId == other.PromptId && Prompt == other.Prompt && Chosen == other.Chosen && Rejected == other.Rejected
        && PromptTokens.AsSpan().SequenceEqual(other.PromptTokens.AsSpan())
        && ChosenTokens.AsSpan().SequenceEqual(other.ChosenTokens.AsSpan())
        && RejectedTokens.AsSpan().SequenceEqual(other.RejectedTokens.AsSpan())
        && Source == other.Source && ChosenRolloutId == other.ChosenRolloutId && RejectedRolloutId == other.RejectedRolloutId
        && Nullable.Equals(RewardGap, other.RewardGap) && UpdateCount == other.UpdateCount
        && ReceivedAt.EqualsExact(other.ReceivedAt);

    public override int GetHashCode() => HashCode.Combine(Id, Chosen, Rejected, UpdateCount);
}
