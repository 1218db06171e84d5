namespace PrefOnline.Learning.Models.Reward;

/// <summary>How a reward model ranks held-out pairs.</summary>
/// <param name="Accuracy">Fraction of pairs with r(chosen) &gt; r(rejected); an exact tie counts half.</param>
/// <param name="MeanMargin">Mean of r(chosen) − r(rejected).</param>
/// <param name="Count">Pairs evaluated.</param>
public sealed record RewardEvaluation(double Accuracy, double MeanMargin, int Count);
