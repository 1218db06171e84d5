namespace PrefOnline.Learning.Experiments.Bandit;

/// <summary>
/// Held-out reward of one method × mode over seeds, each as mean and sample standard deviation (n − 1
/// in the denominator; 0 for a single seed).
/// </summary>
/// <param name="Mean">Final reward, mean over seeds.</param>
/// <param name="BudgetMean">Reward once the run had drawn <paramref name="BudgetSamples"/> samples (the
/// offline batch's size): the end of training for offline runs, an early epoch for on-policy ones. This
/// compares modes at equal data; the final reward compares them at equal epochs of the protocol.</param>
/// <param name="CurveMean">The average of the reward curve over all gradient steps (area under it,
/// normalised): how fast, not only how far.</param>
public sealed record BanditSummary(
    string Method,
    BanditMode Mode,
    double Mean,
    double Std,
    int Seeds,
    long BudgetSamples,
    double BudgetMean,
    double BudgetStd,
    double CurveMean,
    double CurveStd);
