namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// A consistent snapshot of the guardrail for metrics, readiness and logs. Counters are cumulative
/// since the guardrail was created (they back Prometheus counters).
/// </summary>
public sealed record GuardrailStatus(
    GuardrailState State,
    bool UpdatesPaused,
    IReadOnlyList<string> Reasons,
    double ModelDriftScore,
    double HumanDriftScore,
    bool ModelDetectorArmed,
    bool HumanDetectorArmed,
    double RewardModelAccuracy,
    int AccuracyPairs,
    double? LastKlToReference,
    long? GoodVersion,
    IReadOnlyDictionary<(DriftSource Source, DriftDirection Direction), long> DriftAlarms,
    IReadOnlyDictionary<string, long> Trips);
