namespace PrefOnline.Learning.Training.Reward;

/// <summary>Totals over a reward trainer's life (checkpointed with it).</summary>
public readonly record struct RewardTrainerCounters(
    long PairsReceived,
    long RatingsReceived,
    long HeldOutPairs,
    long HeldOutRatings,
    long Rejected,
    long StepsApplied,
    long StepsSkipped,
    long LabelsTrained,
    long Agreed,
    long Scored);
