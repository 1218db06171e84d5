using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// <c>vNNNNNN/manifest.json</c>: what a checkpoint holds and what it has absorbed. Written by the store
/// (callers never build one); snake_case like the Kafka contracts, keys sorted so equal content gives
/// equal bytes. Example:
/// <code>
/// {
///   "format_version": 2,
///   "version": 9,
///   "parent": 3,
///   "created": "2025-06-01T12:00:03.250Z",
///   "config_hash": "sha256:5d41402abc4b2a76b9719d911017c592...",
///   "offsets": { "prefonline.feedback": { "0": 1840, "1": 1795 }, "prefonline.prompts": { "0": 412 } },
///   "metrics": { "kl_to_reference": 0.031, "reward": 0.62 },
///   "files": {
///     "optimizer.safetensors": { "sha256": "9f86d081884c7d65...", "size": 2097216 },
///     "policy.safetensors": { "sha256": "2c26b46b68ffc68f...", "size": 1048664 },
///     "reference.safetensors": { "sha256": "fcde2b2edba56bf4...", "size": 1048664, "shared": true }
///   }
/// }
/// </code>
/// Offsets are Kafka's convention: the NEXT offset to read per topic and partition, so a restart seeks
/// there and re-reads exactly what this checkpoint had not absorbed. Non-finite metrics are written as
/// the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers).
/// </summary>
public sealed record CheckpointManifest
{
    /// <summary>
    /// The layout this build writes. 2 added shared files (<see cref="CheckpointFileEntry.Shared"/>: content-addressed
    /// blobs); 1 is read as before (a version 1 manifest that marks a file shared is refused). Any other is refused.
    /// </summary>
    public const int CurrentFormatVersion = 2;

    /// <summary>Every format_version this build reads.</summary>
    public static IReadOnlyList<int> ReadableFormatVersions { get; } = [1, 2];

    [JsonPropertyName("format_version")]
    public required int FormatVersion { get; init; }

    [JsonPropertyName("version")]
    public required long Version { get; init; }

    /// <summary>The version whose state this one continued from; null for the first of a lineage.</summary>
    [JsonPropertyName("parent")]
    public required long? Parent { get; init; }

    /// <summary>When the write started, UTC.</summary>
    [JsonPropertyName("created")]
    public required DateTimeOffset Created { get; init; }

    /// <summary>Hash of the settings the state was trained under (see <see cref="CheckpointConfigHash"/>); null if the writer gave none.</summary>
    [JsonPropertyName("config_hash")]
    public required string? ConfigHash { get; init; }

    /// <summary>topic → partition → next offset to read.</summary>
    [JsonPropertyName("offsets")]
    public required IReadOnlyDictionary<string, IReadOnlyDictionary<int, long>> Offsets { get; init; }

    /// <summary>name → value, e.g. reward, kl_to_reference, loss at the time of the write.</summary>
    [JsonPropertyName("metrics")]
    public required IReadOnlyDictionary<string, double> Metrics { get; init; }

    /// <summary>
    /// Format 2, written only when true: the version publishes a policy between two checkpoints
    /// (<c>Checkpoints:Interval</c>) and holds no state to resume from. It is served like any version, but a restart
    /// resumes from the newest full version on its line, and it never becomes <c>good</c> or a rollback target. Its
    /// offsets are those of the checkpoint it was published after (what is durable).
    /// </summary>
    [JsonPropertyName("publish_only")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool PublishOnly { get; init; }

    /// <summary>artefact name → hash and size. The version directory holds these files and manifest.json, nothing else.</summary>
    [JsonPropertyName("files")]
    public required IReadOnlyDictionary<string, CheckpointFileEntry> Files { get; init; }

    /// <summary>Sum of the artefacts' sizes, bytes (the manifest itself not included), shared ones included.</summary>
    [JsonIgnore]
    public long TotalBytes => Files.Values.Sum(f => f.Size);

    /// <summary>What this version costs the disk on its own: the artefacts that are not shared blobs, bytes.</summary>
    [JsonIgnore]
    public long OwnBytes => Files.Values.Where(f => !f.Shared).Sum(f => f.Size);
}
