using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Training;

namespace PrefOnline.Learning.Online;

/// <summary>
/// One update cycle of the <see cref="OnlineLearner"/>: what the learner did, the guardrail's verdict
/// (null when nothing was evaluated: an empty batch), and whether the state now holds the update
/// (<see cref="Accepted"/>: its weights are the new <see cref="PolicyVersion"/>, to be checkpointed and published)
/// or must be reloaded from a checkpoint (<see cref="NeedsReload"/>: weights changed but the update was refused).
/// </summary>
public sealed record UpdateCycle(LearnerUpdate Update, GuardrailDecision? Decision, bool Accepted, bool NeedsReload, long PolicyVersion, TimeSpan Duration);

/// <summary>What one <see cref="OnlineLearner.ScoreDue"/> did: groups and rollouts moved into replay, how many
/// took a human reward, and the reward model's raw scores (for the model-reward gauge and drift detector).</summary>
public sealed record ScoringResult(int Groups, int Rollouts, int HumanScored, int Dropped, IReadOnlyList<double> ModelScores)
{
    public static ScoringResult None { get; } = new(0, 0, 0, 0, []);
}

/// <summary>What one <see cref="OnlineLearner.AbsorbLabels"/> did, with the labels the reward trainer refused
/// (the host logs them) and the reward-model steps it ran.</summary>
public sealed record LabelsAbsorbed(int Pairs, int Ratings, int Joined, int Refused, int RewardSteps, double? RewardLoss)
{
    public IReadOnlyList<RefusedLabel> Refusals { get; init; } = [];
}

/// <summary>A label the reward trainer refused: a pair with its <paramref name="Problem"/>, or a rating off the scale (<paramref name="Rating"/>).</summary>
public sealed record RefusedLabel(string Id, string? Problem, double? Rating);

/// <summary>What <see cref="OnlineLearner.DecideUpdate"/> says: run an update now (and why), skip the due one (and
/// why: the host counts it as <c>prefonline_skipped_updates_total</c>), or not yet.</summary>
public enum UpdateDecision
{
    /// <summary>Neither enough fresh samples nor the interval has passed.</summary>
    NotDue,

    /// <summary><c>Learner:UpdateEverySamples</c> fresh scored rollouts are in replay.</summary>
    DueByCount,

    /// <summary><c>Learner:UpdateInterval</c> has passed and at least <c>Learner:MinSamples</c> fresh rollouts are in replay.</summary>
    DueByInterval,

    /// <summary>Due, but the guardrail pauses updates.</summary>
    SkippedPaused,

    /// <summary>The interval has passed with fewer than <c>Learner:MinSamples</c> fresh rollouts.</summary>
    SkippedTooFewSamples,
}
