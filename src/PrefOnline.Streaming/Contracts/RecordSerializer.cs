using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// Writes records as compact UTF-8 JSON in the contract's field names (snake_case), <c>schema</c> first.
/// Non-ASCII text of the Basic Multilingual Plane is written as UTF-8, not \u escapes (the topics are not
/// HTML); characters beyond it (emoji) are written as \u surrogate-pair escapes. Output is accepted by
/// <see cref="Validation.RecordValidator"/> under default limits (round-trip tested).
/// </summary>
public static class RecordSerializer
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = false,
    };

    /// <summary>The record's JSON bytes.</summary>
    /// <exception cref="ArgumentException">A text field holds invalid UTF-16 (an unpaired surrogate).</exception>
    public static byte[] Serialize(StreamRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, record);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the record's JSON bytes to <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, StreamRecord record)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(record);
        using var writer = new Utf8JsonWriter(output, WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("schema"u8, record.Schema);
        switch (record)
        {
            case PromptRecord prompt:
                writer.WriteString("id"u8, prompt.Id);
                WriteText(writer, "prompt"u8, prompt.Prompt);
                if (prompt.MetaJson is not null)
                {
                    writer.WritePropertyName("meta"u8);
                    // PromptRecord's constructor already proved MetaJson is one JSON object, as deep as the validator may
                    // accept; the writer's own check would read it with a fixed depth of 64 and refuse deeper meta.
                    writer.WriteRawValue(prompt.MetaJson, skipInputValidation: true);
                }
                break;
            case PreferenceRecord preference:
                writer.WriteString("id"u8, preference.Id);
                WriteText(writer, "prompt"u8, preference.Prompt);
                WriteText(writer, "chosen"u8, preference.Chosen);
                WriteText(writer, "rejected"u8, preference.Rejected);
                if (preference.RolloutIds is { } ids)
                {
                    writer.WriteStartArray("rollout_ids"u8);
                    writer.WriteStringValue(ids.Chosen);
                    writer.WriteStringValue(ids.Rejected);
                    writer.WriteEndArray();
                }
                break;
            case RatingRecord rating:
                writer.WriteString("id"u8, rating.Id);
                WriteText(writer, "prompt"u8, rating.Prompt);
                WriteText(writer, "completion"u8, rating.Completion);
                writer.WriteNumber("reward"u8, rating.Reward);
                if (rating.RolloutId is not null) writer.WriteString("rollout_id"u8, rating.RolloutId);
                break;
            case RolloutRecord rollout:
                writer.WriteString("id"u8, rollout.Id);
                writer.WriteString("prompt_id"u8, rollout.PromptId);
                WriteText(writer, "prompt"u8, rollout.Prompt);
                WriteText(writer, "completion"u8, rollout.Completion);
                writer.WriteNumber("policy_version"u8, rollout.PolicyVersion);
                writer.WriteNumber("logprob"u8, rollout.Logprob);
                if (rollout.FinishReason is { } finish) writer.WriteString("finish_reason"u8, finish);
                break;
            case PolicyEvent policy:
                writer.WriteString("kind"u8, policy.Kind == PolicyEventKind.Rollback ? "rollback" : "publish");
                writer.WriteNumber("version"u8, policy.Version);
                if (policy.Kind == PolicyEventKind.Rollback)
                {
                    writer.WriteNumber("from_version"u8, policy.FromVersion!.Value);
                    WriteText(writer, "reason"u8, policy.Reason!);
                }
                writer.WriteString("uri"u8, policy.Uri);
                writer.WriteString("sha256"u8, policy.Sha256);
                writer.WriteString("created"u8, Timestamp(policy.Created));
                writer.WriteStartObject("metrics"u8);
                foreach (var (name, value) in policy.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
                {
                    writer.WriteNumber(name, value);
                }
                writer.WriteEndObject();
                if (policy.Files.Count > 0)
                {
                    writer.WriteStartObject("files"u8);
                    foreach (var (name, hash) in policy.Files.OrderBy(f => f.Key, StringComparer.Ordinal)) writer.WriteString(name, hash);
                    writer.WriteEndObject();
                }
                break;
            default:
                throw new ArgumentException($"no serializer for {record.GetType().Name}", nameof(record));
        }
        writer.WriteEndObject();
        writer.Flush();
    }

    /// <summary>RFC 3339 in UTC with milliseconds, or with all seven fractional digits when the time has sub-millisecond ticks, so a parsed timestamp is written back exactly.</summary>
    private static string Timestamp(DateTimeOffset created)
    {
        var utc = created.UtcDateTime;
        var format = utc.Ticks % TimeSpan.TicksPerMillisecond == 0 ? "yyyy-MM-dd'T'HH:mm:ss.fff'Z'" : "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";
        return utc.ToString(format, CultureInfo.InvariantCulture);
    }

    private static void WriteText(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string text)
    {
        // Utf8JsonWriter would silently write U+FFFD for an unpaired surrogate: refuse instead of
        // publishing text that differs from what the caller holds.
        if (!ContractRules.IsValidUtf16(text))
        {
            throw new ArgumentException($"field {System.Text.Encoding.UTF8.GetString(name)} is not valid UTF-16 text (unpaired surrogate)");
        }
        writer.WriteString(name, text);
    }
}
