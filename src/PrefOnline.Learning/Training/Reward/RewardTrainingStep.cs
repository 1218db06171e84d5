namespace PrefOnline.Learning.Training.Reward;

/// <summary>One reward-model gradient step.</summary>
/// <param name="Applied">False when the NaN/Inf guard skipped it (weights and optimizer untouched).</param>
/// <param name="Loss">Total loss (pair term + weight × rating term).</param>
/// <param name="PairLoss">Bradley–Terry loss of the step's pairs (null without pairs).</param>
/// <param name="RatingLoss">Mean squared error of the step's ratings on the logit scale (null without ratings).</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Accuracy">Fraction of the step's pairs ranked right before the step (training accuracy).</param>
/// <param name="FreshLabels">New labels in the step.</param>
/// <param name="ReplayedLabels">Labels replayed from the window.</param>
public sealed record RewardTrainingStep(
    bool Applied,
    double Loss,
    double? PairLoss,
    double? RatingLoss,
    double GradNorm,
    double? Accuracy,
    int Pairs,
    int Ratings,
    int FreshLabels,
    int ReplayedLabels);
