namespace PrefOnline.Learning.Experiments.Length;

/// <summary>One point of a run's learning curve: after <paramref name="Update"/> updates
/// (<paramref name="Samples"/> samples drawn), the exact reward, mean valid length and valid mass.</summary>
public sealed record LengthCurvePoint(int Update, long Samples, double Reward, double MeanLength, double ValidMass);
