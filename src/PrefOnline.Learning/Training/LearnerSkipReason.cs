namespace PrefOnline.Learning.Training;

/// <summary>Why an update stopped before its T inner steps, or took none.</summary>
public enum LearnerSkipReason
{
    /// <summary>Every inner step was applied.</summary>
    None,

    /// <summary>Nothing to learn from: no valid rows, or a pairwise objective found no pairs.</summary>
    EmptyBatch,

    /// <summary>The loss was NaN or ±∞: the step was skipped (weights and optimizer state untouched) and
    /// the remaining inner steps were not attempted (same weights, same data: they would fail alike).</summary>
    NonFiniteLoss,

    /// <summary>The loss was finite but a gradient held NaN/±∞ (the global norm is non-finite): skipped as above.</summary>
    NonFiniteGradients,
}
