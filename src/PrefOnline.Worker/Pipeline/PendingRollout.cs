using PrefOnline.Learning.TrainingData;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// A generated rollout waiting for human labels. <see cref="Rollout"/> carries a placeholder reward until
/// the group is scored; <see cref="HumanReward"/> is set when a rating naming this rollout arrives (its
/// value already mapped onto the reward model's logit scale).
/// </summary>
public sealed class PendingRollout(Rollout rollout)
{
    public Rollout Rollout { get; } = rollout;

    public double? HumanReward { get; set; }
}
