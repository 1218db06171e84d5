namespace PrefOnline.Worker.Pipeline;

/// <summary>What one scoring pass did: groups and rollouts scored, how many by humans, and the reward-model scores (for <c>prefonline_reward{source="model"}</c>).</summary>
public sealed record ScoringResult(int Groups, int Rollouts, int HumanScored, int Dropped, IReadOnlyList<double> ModelScores)
{
    public static ScoringResult None { get; } = new(0, 0, 0, 0, []);
}
