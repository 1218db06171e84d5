namespace PrefOnline.Learning.Objectives;

/// <summary>The running statistics of a <see cref="MovingAverageBaseline"/>: rewards seen, mean, population variance.</summary>
public readonly record struct MovingAverageState(long Count, double Mean, double Variance);
