namespace PrefOnline.Learning.Training.Reward;

/// <summary>The reward model measured on the held-out labels (never trained on).</summary>
/// <param name="PairAccuracy">Fraction of held-out pairs with r(chosen) &gt; r(rejected), ties half
/// (<see cref="Models.Reward.RewardModel.Evaluate"/>); null without held-out pairs.</param>
/// <param name="MeanMargin">Mean r(chosen) − r(rejected) on them.</param>
/// <param name="RatingRmse">Root mean squared error of held-out ratings, in rating units (the model's
/// score mapped back through the rating scale); null without held-out ratings.</param>
/// <param name="AtStep">Training steps taken when measured.</param>
public sealed record RewardHeldOutMetrics(double? PairAccuracy, double? MeanMargin, int PairCount, double? RatingRmse, int RatingCount, long AtStep);
