using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// One line of the store's append-only audit log <c>events.jsonl</c>, e.g.
/// <c>{"time":"2025-06-01T12:00:03.250Z","kind":"rollback","from":9,"to":5,"reason":"reward drift","pid":4242,"host":"learner-0","user":"app"}</c>.
/// The log is for people and alerts ("a rollback happened"); the pointers, not the log, decide what
/// is loaded. The one exception: if a manifest is unreadable, LoadLatestValid uses commit lines to
/// find that version's parent.
/// </summary>
public sealed record CheckpointEvent
{
    [JsonPropertyName("time")]
    public required DateTimeOffset Time { get; init; }

    [JsonPropertyName("kind")]
    public required CheckpointEventKind Kind { get; init; }

    /// <summary>The version committed or deleted.</summary>
    [JsonPropertyName("version")]
    public long? Version { get; init; }

    /// <summary>For commits: the version the new one continued from.</summary>
    [JsonPropertyName("parent")]
    public long? Parent { get; init; }

    /// <summary>For pointer moves: where the pointer was (null if it did not exist).</summary>
    [JsonPropertyName("from")]
    public long? From { get; init; }

    /// <summary>For pointer moves: where the pointer is now.</summary>
    [JsonPropertyName("to")]
    public long? To { get; init; }

    [JsonPropertyName("reason")]
    public string? Reason { get; init; }

    [JsonPropertyName("pid")]
    public int? ProcessId { get; init; }

    [JsonPropertyName("host")]
    public string? Host { get; init; }

    [JsonPropertyName("user")]
    public string? User { get; init; }
}
