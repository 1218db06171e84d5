namespace PrefOnline.Learning.Objectives;

/// <summary>
/// Supplies the KL-penalty coefficient for each update and learns from the KL each update observed.
/// The coefficient is part of the learner's state: checkpoints save and restore it.
/// </summary>
public interface IKlController
{
    /// <summary>The coefficient to use for the next update.</summary>
    double Coefficient { get; }

    /// <param name="observedKl">Per-sequence KL(π‖π_ref) measured on the last batch (nats).</param>
    /// <param name="samples">Sequences in that batch.</param>
    void Update(double observedKl, long samples);

    /// <summary>Sets the coefficient when a checkpoint is restored.</summary>
    void Restore(double coefficient);
}
