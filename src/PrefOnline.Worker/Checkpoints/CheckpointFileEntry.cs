using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>One artefact as the manifest records it: lowercase hex SHA-256 of the bytes and the size in bytes.</summary>
public sealed record CheckpointFileEntry(
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("size")] long Size);
