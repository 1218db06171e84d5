using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// One artefact as the manifest records it: lowercase hex SHA-256 of the bytes and the size in bytes.
/// <paramref name="Shared"/> (format 2): the bytes live once in the store's content-addressed
/// <c>blobs/sha256/&lt;Sha256&gt;</c> and the version directory holds a hard link to that blob, so every version with
/// the same content (the frozen reference or base weights, the tokenizer files) costs the disk one copy. Written only
/// when true, so a manifest without shared files reads as it always did.
/// </summary>
public sealed record CheckpointFileEntry(
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("shared"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Shared = false);
