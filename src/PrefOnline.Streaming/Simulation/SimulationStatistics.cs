namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// A snapshot of the simulated users' view. <see cref="RecentMeanUtility"/> and
/// <see cref="UtilityByPolicyVersion"/> are the ground truth the demo shows: the hidden utility (in
/// nats, under the preference in force when each rollout was seen) of what the policy generates.
/// </summary>
public sealed record SimulationStatistics(
    long PromptsProduced,
    long RolloutsSeen,
    long InvalidRollouts,
    long PairsProduced,
    long RatingsProduced,
    double? RecentMeanUtility,
    int RecentCount,
    bool PreferenceShifted,
    string CurrentPreference,
    IReadOnlyDictionary<long, UtilitySummary> UtilityByPolicyVersion);
