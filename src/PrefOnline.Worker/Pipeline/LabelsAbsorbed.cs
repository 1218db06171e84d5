namespace PrefOnline.Worker.Pipeline;

/// <summary>What one absorption step did with a batch of labels.</summary>
public sealed record LabelsAbsorbed(int Pairs, int Ratings, int Joined, int Refused, int RewardSteps, double? RewardLoss);
