namespace PrefOnline.Worker.Pipeline;

/// <summary>One accepted update as the console and the demo report show it.</summary>
/// <param name="At">Seconds since the pipeline started.</param>
/// <param name="PolicyVersion">The version the update was published as.</param>
/// <param name="Loss">Objective loss of the last inner step.</param>
/// <param name="Kl">KL to the reference, nats per sequence.</param>
/// <param name="ModelReward">Mean reward-model score of the update's fresh rollouts.</param>
public sealed record UpdatePoint(double At, long PolicyVersion, double? Loss, double? Kl, double? ModelReward);
