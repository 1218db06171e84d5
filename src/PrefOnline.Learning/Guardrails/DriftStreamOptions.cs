namespace PrefOnline.Learning.Guardrails;

/// <summary>Drift detection on one reward stream.</summary>
public sealed record DriftStreamOptions
{
    /// <summary>Watch this stream (false: no drift verdicts from it).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The detector's sensitivity (see <see cref="CusumOptions"/> for measured detection delays and false-alarm rates).</summary>
    public CusumOptions Cusum { get; init; } = new();

    /// <summary>
    /// Which alarm directions trip the guardrail. An alarm in another direction is a warning and
    /// re-baselines the detector. Default Down: on-policy reward rising is what learning is for, and
    /// rolling back because humans became happier would be wrong.
    /// </summary>
    public DriftDirection TripOn { get; init; } = DriftDirection.Down;

    public IReadOnlyList<string> Validate(string prefix)
    {
        var errors = new List<string>(Cusum is null ? [$"{prefix}.Cusum is required."] : Cusum.Validate(prefix + ".Cusum"));
        if (TripOn == DriftDirection.None || (TripOn & ~DriftDirection.Both) != 0)
            errors.Add($"{prefix}.TripOn must be Up, Down or Both (got {TripOn}).");
        return errors;
    }
}
