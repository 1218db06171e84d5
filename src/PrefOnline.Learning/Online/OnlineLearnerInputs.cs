using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Training;

namespace PrefOnline.Learning.Online;

/// <summary>The K completions sampled for one prompt, with the rollout ids the host gave them.</summary>
public sealed record GeneratedGroup(string PromptId, string Prompt, IReadOnlyList<SampledCompletion> Completions, IReadOnlyList<string> RolloutIds);

/// <summary>A rollout another process generated (a rollout record): text only, its policy's published version,
/// and whether the policy chose to end it (end-of-sequence sampled).</summary>
public sealed record ReceivedRollout(string Id, string PromptId, string Prompt, string Completion, long PolicyVersion, bool EndedWithEndOfSequence, DateTimeOffset GeneratedAt);

/// <summary>A person's preference between two completions (naming the rollouts, when it judges generated ones).
/// <paramref name="Observed"/>: the guardrail may judge it (false for labels read again after a rollback).</summary>
public sealed record PreferenceLabel(string Id, string Prompt, string Chosen, string Rejected, string? ChosenRolloutId, string? RejectedRolloutId, bool Observed);

/// <summary>A person's rating of one completion, on the deployment's scale (<c>Reward:RatingMin..RatingMax</c>).</summary>
public sealed record RatingLabel(string Id, string Prompt, string Completion, double Reward, string? RolloutId, bool Observed);

/// <summary>Where the online learner reports what the host's gauges show (the worker's metrics implement it).</summary>
public interface IOnlineLearnerObserver
{
    /// <summary>A reward seen: a person's rating (<see cref="DriftSource.Human"/>) or the reward model's score.</summary>
    void ObserveReward(DriftSource source, double reward);

    /// <summary>Rollouts in the replay buffer after a change.</summary>
    void SetReplaySize(long samples);
}

/// <summary>What an <see cref="OnlineLearner"/> reads from the configuration besides its models.</summary>
/// <param name="LabelWait">How long a generated group waits for its users' labels before the reward model scores it.</param>
/// <param name="RewardBatchSize">Rows per reward-model forward when scoring.</param>
/// <param name="Decoders">The sampling backends, in preference order.</param>
public sealed record OnlineLearnerSettings(
    LearnerOptions Learner, Training.Reward.RewardTrainerOptions Reward, Replay.ReplayOptions Replay,
    TimeSpan LabelWait, int RewardBatchSize, PolicyDecoderFactory Decoders);
