namespace PrefOnline.Learning.Experiments.Length;

/// <summary>One seed's SFT-fitted reference policy, measured exactly.</summary>
/// <param name="TotalVariation">Total-variation distance between its length distribution (valid mass
/// renormalised) and the corpus's: how well the SFT fitted the corpus.</param>
/// <param name="Rewards">Its reward on each task.</param>
/// <param name="OfflineMeanLength">Mean valid length of each task's offline dataset.</param>
public sealed record LengthReferenceStats(
    int Seed,
    double MeanLength,
    double ValidMass,
    double TotalVariation,
    IReadOnlyDictionary<LengthTask, double> Rewards,
    IReadOnlyDictionary<LengthTask, double> OfflineMeanLength,
    double PretrainSeconds);
