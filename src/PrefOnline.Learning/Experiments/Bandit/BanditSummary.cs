namespace PrefOnline.Learning.Experiments.Bandit;

/// <summary>Final held-out reward of one method × mode over seeds: mean and sample standard deviation
/// (n − 1 in the denominator; 0 for a single seed).</summary>
public sealed record BanditSummary(string Method, BanditMode Mode, double Mean, double Std, int Seeds);
