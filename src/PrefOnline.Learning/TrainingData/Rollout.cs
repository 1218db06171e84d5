using System.Collections.Immutable;

namespace PrefOnline.Learning.TrainingData;

/// <summary>
/// One scored completion, as the worker stores it in the replay buffer: what was asked, what the
/// policy answered (text and token ids), how likely the answering policy found each token (needed for
/// PPO's ratio, and to measure off-policyness later), the reward and where it came from, and which
/// policy version produced it (the replay buffer's staleness limit reads this).
/// </summary>
/// <remarks>Immutable; equality is by value, token arrays included.</remarks>
public sealed record Rollout
{
    public required string Id { get; init; }

    public required string PromptId { get; init; }

    public required string Prompt { get; init; }

    public required string Completion { get; init; }

    public required ImmutableArray<int> PromptTokens { get; init; }

    public required ImmutableArray<int> CompletionTokens { get; init; }

    /// <summary>log μ(y_t | x, y_&lt;t) of each completion token under the behaviour policy (nats),
    /// one per <see cref="CompletionTokens"/> entry.</summary>
    public required ImmutableArray<float> BehaviourLogProbs { get; init; }

    public required double Reward { get; init; }

    public required RewardSource RewardSource { get; init; }

    /// <summary>The policy that generated the completion, counted in the learner's updates
    /// (<see cref="Training.Learner.UpdateCount"/>, what replay staleness is measured in), not the published version.</summary>
    public required long UpdateCount { get; init; }

    public required DateTimeOffset GeneratedAt { get; init; }

    public required DateTimeOffset ScoredAt { get; init; }

    /// <summary>log μ(y | x): the sum of <see cref="BehaviourLogProbs"/>.</summary>
    public double BehaviourLogProb
    {
        get
        {
            double sum = 0;
            foreach (var lp in BehaviourLogProbs) sum += lp;
            return sum;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that cannot be trained on.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Id)) throw new ArgumentException("rollout id is empty", nameof(Id));
        if (string.IsNullOrEmpty(PromptId)) throw new ArgumentException($"rollout {Id}: prompt id is empty", nameof(PromptId));
        if (Prompt is null || Completion is null) throw new ArgumentException($"rollout {Id}: prompt and completion text are required");
        if (PromptTokens.IsDefault || CompletionTokens.IsDefault || BehaviourLogProbs.IsDefault)
            throw new ArgumentException($"rollout {Id}: token arrays must be set (use an empty array, not default)");
        if (CompletionTokens.Length == 0) throw new ArgumentException($"rollout {Id}: the completion has no tokens", nameof(CompletionTokens));
        if (BehaviourLogProbs.Length != CompletionTokens.Length)
            throw new ArgumentException($"rollout {Id}: {BehaviourLogProbs.Length} behaviour log-probs for {CompletionTokens.Length} completion tokens", nameof(BehaviourLogProbs));
        foreach (var lp in BehaviourLogProbs)
            if (!float.IsFinite(lp) || lp > 0) throw new ArgumentException($"rollout {Id}: behaviour log-prob {lp} is not a finite number ≤ 0", nameof(BehaviourLogProbs));
        if (!double.IsFinite(Reward)) throw new ArgumentException($"rollout {Id}: reward {Reward} is not finite", nameof(Reward));
        if (!Enum.IsDefined(RewardSource)) throw new ArgumentException($"rollout {Id}: unknown reward source {(int)RewardSource}", nameof(RewardSource));
        if (UpdateCount < 0) throw new ArgumentException($"rollout {Id}: update count {UpdateCount} is negative", nameof(UpdateCount));
    }

    public bool Equals(Rollout? other) =>
        other is not null
        && Id == other.Id && PromptId == other.PromptId && Prompt == other.Prompt && Completion == other.Completion
        && PromptTokens.AsSpan().SequenceEqual(other.PromptTokens.AsSpan())
        && CompletionTokens.AsSpan().SequenceEqual(other.CompletionTokens.AsSpan())
        && BehaviourLogProbs.AsSpan().SequenceEqual(other.BehaviourLogProbs.AsSpan())
        && Reward.Equals(other.Reward) && RewardSource == other.RewardSource && UpdateCount == other.UpdateCount
        && GeneratedAt.EqualsExact(other.GeneratedAt) && ScoredAt.EqualsExact(other.ScoredAt);

    public override int GetHashCode() => HashCode.Combine(Id, PromptId, CompletionTokens.Length, Reward, UpdateCount);
}
