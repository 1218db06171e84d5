using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// <c>rollback.request</c> in the store root: an operator's rollback for the running learner to apply.
/// The learner holds the writer lock, so a rollback from outside (<c>kubectl exec … prefonline checkpoint
/// rollback</c>) cannot move <c>latest</c> itself without racing the learner's next commit; it leaves this
/// request instead, and the learner applies it at its next update boundary
/// (<see cref="CheckpointStore.ApplyRequestedRollbackAsync"/>, also run by LoadLatestValidAsync).
/// While a request is pending the learner cannot commit (WriteAsync refuses), so the operator's intent
/// is never overwritten by a checkpoint of the state being rolled back, and retention keeps its target.
/// The store also writes one itself as the journal of every rollback (removed once both pointers moved),
/// so a rollback cut short by a crash is completed at the next start.
/// </summary>
public sealed record CheckpointRollbackRequest
{
    [JsonPropertyName("to")]
    public required long To { get; init; }

    [JsonPropertyName("reason")]
    public required string Reason { get; init; }

    [JsonPropertyName("time")]
    public required DateTimeOffset Time { get; init; }

    [JsonPropertyName("user")]
    public string? User { get; init; }

    [JsonPropertyName("host")]
    public string? Host { get; init; }

    [JsonPropertyName("pid")]
    public int? ProcessId { get; init; }

    public override string ToString() =>
        $"rollback to {CheckpointVersion.DirectoryName(To)} requested by {User ?? "?"}@{Host ?? "?"} at {Time:yyyy-MM-ddTHH:mm:ssZ} ({Reason})";
}
