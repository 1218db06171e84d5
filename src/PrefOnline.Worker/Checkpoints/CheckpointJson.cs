using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The one JSON configuration for manifests and events: strict on read (duplicate keys, unknown keys,
/// missing required keys and nulls where none belong are all errors, because a checkpoint that does not
/// say exactly what this build expects must be refused, not half-understood).
/// </summary>
internal static class CheckpointJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        AllowDuplicateProperties = false,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new UtcTimestampConverter(), new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
    };

    /// <summary>One event per line: the same rules, no indentation, absent optional fields left out.</summary>
    public static readonly JsonSerializerOptions EventLine = new(Options)
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static byte[] SerializeManifest(CheckpointManifest manifest) =>
        Encoding.UTF8.GetBytes(JsonSerializer.Serialize(manifest, Options) + "\n");

    /// <summary>Parses a manifest; throws <see cref="JsonException"/> with the position on malformed input.</summary>
    public static CheckpointManifest DeserializeManifest(ReadOnlySpan<byte> utf8) =>
        JsonSerializer.Deserialize<CheckpointManifest>(utf8, Options) ?? throw new JsonException("manifest is JSON null");

    /// <summary>ISO-8601 UTC with milliseconds and a 'Z' ("2025-06-01T12:00:03.250Z"); offsets on read are converted to UTC.</summary>
    private sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
    {
        private const string Format = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var text = reader.GetString() ?? throw new JsonException("timestamp is null");
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
                throw new JsonException($"'{text}' is not an ISO-8601 timestamp");
            return value.ToUniversalTime();
        }

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.ToUniversalTime().ToString(Format, CultureInfo.InvariantCulture));
    }
}
