namespace PrefOnline.Learning.Experiments.Length;

/// <summary>A policy measured exactly on the length corpus (no sampling): averaged over the prompts.</summary>
/// <param name="Reward">E[r] of the task (invalid completions earn 0).</param>
/// <param name="MeanLength">E[L | valid]: the mean length of the valid completions.</param>
/// <param name="ValidMass">P(valid): the probability of a valid completion.</param>
/// <param name="LengthProbabilities">P(valid, L = l) for l = 0..MaxLength.</param>
public sealed record LengthEvaluation(double Reward, double MeanLength, double ValidMass, IReadOnlyList<double> LengthProbabilities);
