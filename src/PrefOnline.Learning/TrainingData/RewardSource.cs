namespace PrefOnline.Learning.TrainingData;

/// <summary>Where a rollout's reward came from.</summary>
public enum RewardSource : byte
{
    /// <summary>A person's rating (prefonline.rating.v1) joined to the rollout.</summary>
    Human = 0,

    /// <summary>The online reward model's score.</summary>
    Model = 1,

    /// <summary>A programmatic reward (experiments, simulated users).</summary>
    Programmatic = 2,
}
