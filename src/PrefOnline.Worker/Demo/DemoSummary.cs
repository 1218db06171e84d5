using System.Text.Json.Serialization;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// The demo's result (summary.json). Rewards are the simulated users' hidden utility (nats, higher is better):
/// <see cref="RewardBefore"/> over the rollouts of the starting policy, <see cref="RewardAfter"/> over the last
/// rollouts the users saw (up to 256).
/// </summary>
public sealed record DemoSummary
{
    [JsonPropertyName("duration_seconds")] public required double DurationSeconds { get; init; }
    [JsonPropertyName("preference")] public required string Preference { get; init; }
    [JsonPropertyName("preference_shifted")] public required bool PreferenceShifted { get; init; }
    [JsonPropertyName("objective")] public required string Objective { get; init; }
    [JsonPropertyName("first_policy_version")] public required long FirstPolicyVersion { get; init; }
    [JsonPropertyName("last_policy_version")] public required long LastPolicyVersion { get; init; }
    [JsonPropertyName("updates")] public required int Updates { get; init; }
    [JsonPropertyName("rollbacks")] public required int Rollbacks { get; init; }
    [JsonPropertyName("checkpoints_written")] public required long CheckpointsWritten { get; init; }
    [JsonPropertyName("labels_absorbed")] public required long LabelsAbsorbed { get; init; }
    [JsonPropertyName("rollouts_seen_by_users")] public required long RolloutsSeen { get; init; }
    [JsonPropertyName("reward_before")] public required double? RewardBefore { get; init; }
    [JsonPropertyName("reward_before_rollouts")] public required long RewardBeforeCount { get; init; }
    [JsonPropertyName("reward_after")] public required double? RewardAfter { get; init; }
    [JsonPropertyName("reward_after_rollouts")] public required int RewardAfterCount { get; init; }
    [JsonPropertyName("kl_to_reference")] public required double? FinalKl { get; init; }
    [JsonPropertyName("samples_before")] public required IReadOnlyList<DemoSample> SamplesBefore { get; init; }
    [JsonPropertyName("samples_after")] public required IReadOnlyList<DemoSample> SamplesAfter { get; init; }
    [JsonPropertyName("checkpoint_directory")] public required string CheckpointDirectory { get; init; }

    [JsonPropertyName("reward_gain")] public double? RewardGain => RewardAfter - RewardBefore;

    public static DemoSummary Create(WorkerSettings settings, PipelineStatus status, SimulationStatistics? users, long firstVersion,
        IReadOnlyList<DemoProgressPoint> points, IReadOnlyList<DemoSample> before, IReadOnlyList<DemoSample> after)
    {
        UtilitySummary? start = users is not null && users.UtilityByPolicyVersion.TryGetValue(firstVersion, out var s) ? s : null;
        var updates = status.Updates;
        return new DemoSummary
        {
            DurationSeconds = Math.Round(status.RunningSeconds, 1),
            Preference = users?.CurrentPreference ?? settings.Demo.Users.Preference,
            PreferenceShifted = users?.PreferenceShifted ?? false,
            Objective = settings.Learner.Objective,
            FirstPolicyVersion = firstVersion,
            LastPolicyVersion = status.PolicyVersion,
            Updates = updates.Count,
            Rollbacks = status.Rollbacks.Count,
            CheckpointsWritten = status.Checkpoints,
            LabelsAbsorbed = status.LabelsAbsorbed,
            RolloutsSeen = users?.RolloutsSeen ?? 0,
            RewardBefore = start?.Mean,
            RewardBeforeCount = start?.Count ?? 0,
            RewardAfter = users?.RecentMeanUtility,
            RewardAfterCount = users?.RecentCount ?? 0,
            FinalKl = updates.Count > 0 ? updates[^1].Kl : null,
            SamplesBefore = before,
            SamplesAfter = after,
            CheckpointDirectory = Path.GetFullPath(settings.Checkpoints.Directory),
        };
    }
}
