namespace PrefOnline.Learning.Guardrails;

/// <summary>Where a <see cref="CusumDetector"/> is in its cycle.</summary>
public enum DriftPhase
{
    /// <summary>Collecting the first <see cref="CusumOptions.WarmUp"/> observations to estimate the baseline; no alarms.</summary>
    WarmingUp,
    /// <summary>Baseline known; every observation updates the CUSUM statistics and can raise an alarm.</summary>
    Armed,
}
