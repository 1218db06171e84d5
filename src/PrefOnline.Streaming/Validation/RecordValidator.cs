using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Validation;

/// <summary>
/// The strict gate between raw bytes and <see cref="StreamRecord"/>s for one topic: every record is
/// checked in a single bounded pass and either parsed or refused with a stable reason
/// (<see cref="ReasonCodes"/>, in check order) and a one-line detail.
/// </summary>
/// <remarks>
/// Bounded work: size is checked before anything else, UTF-8 with one vectorised scan, JSON with an
/// iterative reader (no recursion, so no nesting depth can overflow the stack) limited to
/// <see cref="ValidationLimits.MaxJsonDepth"/>. Unknown fields follow <see cref="ValidationLimits.UnknownFields"/>.
/// Ids are unique per validator (= per topic): a valid record whose id was seen at another position
/// within the duplicate window is refused as <c>duplicate-id</c>; refused records never enter the window.
/// Thread-safe; the valid path throws no exceptions, and <see cref="Validate(ReadOnlySpan{byte}, RecordPosition?)"/>
/// never throws: an unanticipated exception is returned as <c>validator-error</c> (docs/OPERATIONS.md, "Failure policy").
/// </remarks>
public sealed class RecordValidator
{
    private static readonly SearchValues<byte> BinaryControlBytes = SearchValues.Create(
        [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F]);

    [ThreadStatic] private static Scratch? threadScratch;

    private readonly ValidationLimits limits;
    private readonly HashSet<string> accepted;
    private readonly DuplicateIdWindow? duplicates;
    private readonly JsonReaderOptions readerOptions;

    /// <param name="limits">Copied: later changes to the instance do not affect this validator.</param>
    /// <param name="acceptedSchemas">Schemas this topic carries (e.g. <see cref="SchemaNames.FeedbackTopic"/>); others are <c>unexpected-schema</c>.</param>
    /// <param name="timeProvider">Clock of the duplicate window (tests pass a fake one).</param>
    /// <exception cref="ArgumentException">The limits are invalid or a schema is unknown.</exception>
    public RecordValidator(ValidationLimits limits, IEnumerable<string> acceptedSchemas, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(acceptedSchemas);
        var problems = limits.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid validation limits: " + string.Join("; ", problems), nameof(limits));
        this.limits = limits.Clone();
        accepted = new HashSet<string>(acceptedSchemas, StringComparer.Ordinal);
        if (accepted.Count == 0) throw new ArgumentException("at least one accepted schema is required", nameof(acceptedSchemas));
        foreach (var schema in accepted)
        {
            if (!SchemaNames.All.Contains(schema)) throw new ArgumentException($"unknown schema '{schema}'; known: {string.Join(", ", SchemaNames.All)}", nameof(acceptedSchemas));
        }
        if (this.limits.DuplicateWindowSize > 0) duplicates = new DuplicateIdWindow(this.limits.DuplicateWindowSize, this.limits.DuplicateWindowTtl, timeProvider);
        // One level more than the limit so that our own check, which names the problem, fires first.
        readerOptions = new JsonReaderOptions { MaxDepth = this.limits.MaxJsonDepth + 1, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false };
    }

    public IReadOnlyCollection<string> AcceptedSchemas => accepted;

    /// <summary>The duplicate-id window (null when <see cref="ValidationLimits.DuplicateWindowSize"/> is 0), to save with a checkpoint and restore on load.</summary>
    public DuplicateIdWindow? DuplicateWindow => duplicates;

    /// <summary>A copy of the limits in force.</summary>
    public ValidationLimits Limits => limits.Clone();

    /// <summary>
    /// Validates a consumed record; its position distinguishes a redelivery from a duplicate id. Its size is the
    /// value, key and headers together (<see cref="ConsumedRecord.Size"/>), as Kafka counts a message; a record whose
    /// source did not read it into memory for its size (<see cref="ConsumedRecord.ContentOmitted"/>) is <c>record-too-large</c>.
    /// </summary>
    public ValidationResult Validate(ConsumedRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.ContentOmitted)
        {
            return ValidationResult.Invalid(ReasonCodes.RecordTooLarge,
                $"the record has {record.Size} bytes (value, key and headers); the limit is {limits.MaxRecordBytes}; it was not read into memory");
        }
        if (record.Value.Length > 0 && record.Size > limits.MaxRecordBytes)
        {
            return ValidationResult.Invalid(ReasonCodes.RecordTooLarge,
                $"the record has {record.Size} bytes (value {record.Value.Length}, key and headers {record.Size - record.Value.Length}); the limit is {limits.MaxRecordBytes}");
        }
        return Validate(record.Value, record.Position);
    }

    /// <summary>Validates raw bytes. With no <paramref name="position"/>, any repeated id is a duplicate.</summary>
    public ValidationResult Validate(ReadOnlySpan<byte> utf8Json, RecordPosition? position = null)
    {
        if (utf8Json.IsEmpty) return ValidationResult.Invalid(ReasonCodes.EmptyRecord, "the record has no bytes");
        if (utf8Json.Length > limits.MaxRecordBytes)
        {
            return ValidationResult.Invalid(ReasonCodes.RecordTooLarge, $"the record has {utf8Json.Length} bytes; the limit is {limits.MaxRecordBytes}");
        }
        var control = utf8Json.IndexOfAny(BinaryControlBytes);
        if (control >= 0)
        {
            return ValidationResult.Invalid(ReasonCodes.BinaryData, $"control byte 0x{utf8Json[control]:X2} at byte {control}: binary data, not JSON text");
        }
        if (!Utf8.IsValid(utf8Json))
        {
            return ValidationResult.Invalid(ReasonCodes.InvalidUtf8, $"invalid UTF-8 sequence at byte {FirstInvalidUtf8(utf8Json)}");
        }

        var scratch = threadScratch ??= new Scratch();
        scratch.Reset();
        try
        {
            if (Parse(utf8Json, scratch) is { } malformed) return ValidationResult.Invalid(malformed.Reason, malformed.Message);
            var record = Build(scratch);
            if (duplicates is not null && IdOf(record) is { } id && !duplicates.TryRegister(id, position, out var firstSeenAt))
            {
                var where = firstSeenAt is { } at ? $" at {at}" : "";
                return ValidationResult.Invalid(ReasonCodes.DuplicateId, $"id '{Excerpt(id)}' was already seen{where} within the duplicate window");
            }
            return ValidationResult.Valid(record);
        }
        catch (Rejection rejection)
        {
            return ValidationResult.Invalid(rejection.Reason, rejection.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last line of defence: a record must never fault the stage that consumes it (a crash loop on
            // restart, since the same offset is read again). Any exception not anticipated above is a
            // validator bug; the record is refused as validator-error with the exception for the log.
            return ValidationResult.Invalid(new ValidationFailure(ReasonCodes.ValidatorError, $"unexpected {e.GetType().Name} while validating: {OneLine(e.Message)}") { Exception = e });
        }
        finally
        {
            scratch.Reset();
        }
    }

    // ---- pass 1: JSON structure -------------------------------------------------------------

    /// <summary>
    /// The structural pass. Returns the rejection for malformed JSON (returned, not thrown: the reader's own
    /// exception already cost a throw, and garbage is the most common refusal of all); other rejections are thrown.
    /// </summary>
    private Rejection? Parse(ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        var reader = new Utf8JsonReader(utf8, isFinalBlock: true, new JsonReaderState(readerOptions));
        try
        {
            if (!reader.Read()) throw new Rejection(ReasonCodes.InvalidJson, "no JSON value (only whitespace)");
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                var kind = TokenName(reader.TokenType);
                SkipValue(ref reader, utf8, scratch);
                while (reader.Read())
                {
                    // Unreachable: the reader throws on trailing data; kept so the loop drains the input.
                }
                throw new Rejection(ReasonCodes.NotAnObject, $"the top-level JSON value is {kind}; a record is an object");
            }
            while (true)
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.EndObject) break;
                var field = MatchField(ref reader, out var decodedName);
                if (field >= 0)
                {
                    var bit = 1u << field;
                    if ((scratch.Seen & bit) != 0) throw new Rejection(ReasonCodes.DuplicateKey, $"key '{FieldNames[field]}' appears twice");
                    scratch.Seen |= bit;
                    reader.Read();
                    ReadField((Field)field, ref reader, utf8, scratch);
                }
                else
                {
                    var name = decodedName ?? ReadString(ref reader, "a key");
                    scratch.UnknownNames ??= new HashSet<string>(StringComparer.Ordinal);
                    if (!scratch.UnknownNames.Add(name)) throw new Rejection(ReasonCodes.DuplicateKey, $"key '{Excerpt(name)}' appears twice");
                    scratch.FirstUnknown ??= name;
                    reader.Read();
                    SkipValue(ref reader, utf8, scratch);
                }
            }
            // The reader refuses trailing non-whitespace data itself (single-value mode).
            while (reader.Read())
            {
            }
            return null;
        }
        catch (JsonException e)
        {
            var at = (int)reader.BytesConsumed;
            if (NonFiniteLiteralAt(utf8, at) is { } literal)
            {
                return new Rejection(ReasonCodes.NonFiniteNumber, $"the literal {literal} at byte {at} is not a JSON number (NaN and Infinity are not allowed)");
            }
            return new Rejection(ReasonCodes.InvalidJson, OneLine(e.Message));
        }
    }

    private void ReadField(Field field, ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        ref var slot = ref scratch.Values[(int)field];
        slot.Token = reader.TokenType;
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                slot.Text = ReadString(ref reader, FieldNames[(int)field]);
                return;
            case JsonTokenType.Number:
                if (reader.TryGetInt64(out var integer))
                {
                    slot.Integer = integer;
                    slot.IsInteger = true;
                    slot.Number = integer;
                    return;
                }
                slot.Number = ReadFiniteDouble(ref reader, FieldNames[(int)field]);
                return;
            case JsonTokenType.StartObject when field == Field.Meta:
            {
                var start = (int)reader.TokenStartIndex;
                SkipValue(ref reader, utf8, scratch);
                var length = (int)reader.BytesConsumed - start;
                slot.Integer = length;
                if (length <= limits.MaxMetaBytes) slot.Text = Encoding.UTF8.GetString(utf8.Slice(start, length));
                return;
            }
            case JsonTokenType.StartObject when field == Field.Metrics:
                ReadMetrics(ref reader, utf8, scratch);
                return;
            case JsonTokenType.StartObject when field == Field.Files:
                ReadFiles(ref reader, utf8, scratch);
                return;
            case JsonTokenType.StartArray when field == Field.RolloutIds:
                ReadRolloutIds(ref reader, utf8, scratch);
                return;
            default:
                SkipValue(ref reader, utf8, scratch);
                return;
        }
    }

    private void ReadMetrics(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        CheckDepth(ref reader);
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        scratch.Metrics = metrics;
        while (true)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndObject) return;
            var name = ReadString(ref reader, "a metrics key");
            if (metrics.ContainsKey(name) || (scratch.MetricsProblem is not null && scratch.MetricsProblemNames?.Contains(name) == true))
            {
                throw new Rejection(ReasonCodes.DuplicateKey, $"key 'metrics.{Excerpt(name)}' appears twice");
            }
            reader.Read();
            if (reader.TokenType == JsonTokenType.Number)
            {
                metrics[name] = ReadFiniteDouble(ref reader, $"metrics.{name}");
            }
            else
            {
                (scratch.MetricsProblemNames ??= new HashSet<string>(StringComparer.Ordinal)).Add(name);
                scratch.MetricsProblem ??= new Rejection(ReasonCodes.WrongType, $"metrics.{Excerpt(name)} must be a number, got {TokenName(reader.TokenType)}");
                SkipValue(ref reader, utf8, scratch);
            }
        }
    }

    /// <summary>The policy event's <c>files</c> object: file name → SHA-256 text. Names and hashes are judged in <see cref="BuildPolicy"/>.</summary>
    private void ReadFiles(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        CheckDepth(ref reader);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        scratch.Files = files;
        while (true)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndObject) return;
            var name = ReadString(ref reader, "a files key");
            if (files.ContainsKey(name) || scratch.FilesProblemNames?.Contains(name) == true) throw new Rejection(ReasonCodes.DuplicateKey, $"key 'files.{Excerpt(name)}' appears twice");
            reader.Read();
            if (reader.TokenType == JsonTokenType.String)
            {
                files[name] = ReadString(ref reader, $"files.{name}");
            }
            else
            {
                (scratch.FilesProblemNames ??= new HashSet<string>(StringComparer.Ordinal)).Add(name);
                scratch.FilesProblem ??= new Rejection(ReasonCodes.WrongType, $"files.{Excerpt(name)} must be a string (a SHA-256), got {TokenName(reader.TokenType)}");
                SkipValue(ref reader, utf8, scratch);
            }
        }
    }

    private void ReadRolloutIds(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        CheckDepth(ref reader);
        var ids = new List<string>(2);
        scratch.RolloutIds = ids;
        while (true)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndArray) return;
            if (reader.TokenType == JsonTokenType.String)
            {
                var id = ReadString(ref reader, "rollout_ids");
                if (ids.Count < 3) ids.Add(id);
                else scratch.RolloutIdsOverflow = true;
            }
            else
            {
                scratch.RolloutIdsProblem ??= new Rejection(ReasonCodes.WrongType, $"rollout_ids must hold strings, got {TokenName(reader.TokenType)}");
                SkipValue(ref reader, utf8, scratch);
            }
        }
    }

    /// <summary>
    /// Consumes the value at the reader (scalar or container) iteratively, enforcing depth, unique keys,
    /// finite numbers and decodable strings everywhere inside it.
    /// </summary>
    private void SkipValue(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, Scratch scratch)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                if (reader.ValueIsEscaped) ReadString(ref reader, "a string");
                return;
            case JsonTokenType.Number:
                if (!reader.TryGetInt64(out _)) ReadFiniteDouble(ref reader, "a number");
                return;
            case JsonTokenType.StartObject:
            case JsonTokenType.StartArray:
                break;
            default:
                return;
        }
        var keys = scratch.KeyStack;
        var baseDepth = reader.CurrentDepth;
        var baseCount = keys.Count;
        CheckDepth(ref reader);
        keys.Add(reader.TokenType == JsonTokenType.StartObject ? scratch.RentKeySet() : null);
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        CheckDepth(ref reader);
                        keys.Add(reader.TokenType == JsonTokenType.StartObject ? scratch.RentKeySet() : null);
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        scratch.ReturnKeySet(keys[^1]);
                        keys.RemoveAt(keys.Count - 1);
                        if (reader.CurrentDepth == baseDepth) return;
                        break;
                    case JsonTokenType.PropertyName:
                        var name = ReadString(ref reader, "a key");
                        if (!keys[^1]!.Add(name)) throw new Rejection(ReasonCodes.DuplicateKey, $"key '{Excerpt(name)}' appears twice in a nested object");
                        break;
                    case JsonTokenType.String:
                        if (reader.ValueIsEscaped) ReadString(ref reader, "a string");
                        break;
                    case JsonTokenType.Number:
                        if (!reader.TryGetInt64(out _)) ReadFiniteDouble(ref reader, "a number");
                        break;
                }
            }
        }
        finally
        {
            while (keys.Count > baseCount)
            {
                scratch.ReturnKeySet(keys[^1]);
                keys.RemoveAt(keys.Count - 1);
            }
        }
    }

    private void CheckDepth(ref Utf8JsonReader reader)
    {
        // CurrentDepth of a start token is the depth of its container; the top-level object is level 1.
        if (reader.CurrentDepth + 1 > limits.MaxJsonDepth)
        {
            throw new Rejection(ReasonCodes.TooDeep, $"objects/arrays are nested deeper than {limits.MaxJsonDepth} levels");
        }
    }

    private static string ReadString(ref Utf8JsonReader reader, string what)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            // Raised by the reader when a \u escape encodes an unpaired UTF-16 surrogate.
            throw new Rejection(ReasonCodes.LoneSurrogate, $"{what} holds an unpaired surrogate escape ({OneLine(e.Message)})");
        }
    }

    private static double ReadFiniteDouble(ref Utf8JsonReader reader, string what)
    {
        if (!reader.TryGetDouble(out var value) || !double.IsFinite(value))
        {
            throw new Rejection(ReasonCodes.NonFiniteNumber, $"{what} ({Excerpt(Encoding.UTF8.GetString(reader.ValueSpan))}) overflows a double");
        }
        return value;
    }

    /// <summary>
    /// The index of the top-level key at the reader in <see cref="FieldNames"/>, or -1. An escaped key is
    /// decoded first (returned in <paramref name="decoded"/>) through the same path as every other string,
    /// so an unpaired surrogate escape in a key is <c>lone-surrogate</c> like one in a value
    /// (<see cref="Utf8JsonReader.ValueTextEquals(ReadOnlySpan{byte})"/> would throw InvalidOperationException).
    /// </summary>
    private static int MatchField(ref Utf8JsonReader reader, out string? decoded)
    {
        decoded = null;
        if (!reader.ValueIsEscaped)
        {
            var name = reader.ValueSpan;
            for (var i = 0; i < FieldNameBytes.Length; i++)
            {
                if (name.SequenceEqual(FieldNameBytes[i])) return i;
            }
            return -1;
        }
        decoded = ReadString(ref reader, "a key");
        return Array.IndexOf(FieldNames, decoded);
    }

    // ---- pass 2: schema and values ----------------------------------------------------------

    private StreamRecord Build(Scratch s)
    {
        if (!s.Has(Field.Schema)) throw new Rejection(ReasonCodes.MissingSchema, "the record has no 'schema' field");
        if (s.Values[(int)Field.Schema].Token != JsonTokenType.String)
        {
            throw new Rejection(ReasonCodes.WrongType, $"schema must be a string, got {TokenName(s.Values[(int)Field.Schema].Token)}");
        }
        var schema = s.Values[(int)Field.Schema].Text!;
        var spec = Spec.For(schema) ?? throw new Rejection(ReasonCodes.UnknownSchema, $"schema '{Excerpt(schema)}' is not one of {string.Join(", ", SchemaNames.All)}");
        if (!accepted.Contains(schema))
        {
            throw new Rejection(ReasonCodes.UnexpectedSchema, $"schema '{schema}' does not belong on this topic (accepted: {string.Join(", ", accepted)})");
        }

        var isRollback = false;
        if (spec.Schema == SchemaNames.PolicyV1 && s.Has(Field.Kind) && s.Values[(int)Field.Kind].Token == JsonTokenType.String)
        {
            isRollback = s.Values[(int)Field.Kind].Text == "rollback";
        }
        var allowed = spec.Required | spec.Optional | (isRollback ? Spec.RollbackOnly : 0);
        if (limits.UnknownFields == UnknownFieldPolicy.Reject)
        {
            if (s.FirstUnknown is { } unknown) throw new Rejection(ReasonCodes.UnknownField, $"field '{Excerpt(unknown)}' is not part of {schema}");
            var foreign = s.Seen & ~allowed;
            if (foreign != 0)
            {
                var name = FieldNames[System.Numerics.BitOperations.TrailingZeroCount(foreign)];
                var why = (foreign & Spec.RollbackOnly) != 0 && spec.Schema == SchemaNames.PolicyV1 ? " (only on kind \"rollback\")" : "";
                throw new Rejection(ReasonCodes.UnknownField, $"field '{name}' is not part of {schema}{why}");
            }
        }
        var required = spec.Required | (isRollback ? Spec.RollbackOnly : 0);
        var missing = required & ~s.Seen;
        if (missing != 0)
        {
            throw new Rejection(ReasonCodes.MissingField, $"required field '{FieldNames[System.Numerics.BitOperations.TrailingZeroCount(missing)]}' is missing from {schema}");
        }

        return schema switch
        {
            SchemaNames.PromptV1 => BuildPrompt(s),
            SchemaNames.PreferenceV1 => BuildPreference(s),
            SchemaNames.RatingV1 => BuildRating(s),
            SchemaNames.RolloutV1 => BuildRollout(s),
            _ => BuildPolicy(s, isRollback),
        };
    }

    private PromptRecord BuildPrompt(Scratch s)
    {
        var id = Id(s, Field.Id);
        var prompt = Text(s, Field.Prompt);
        string? meta = null;
        if (Optional(s, Field.Meta))
        {
            ref var slot = ref s.Values[(int)Field.Meta];
            if (slot.Token != JsonTokenType.StartObject) throw new Rejection(ReasonCodes.WrongType, $"meta must be an object, got {TokenName(slot.Token)}");
            if (slot.Integer > limits.MaxMetaBytes) throw new Rejection(ReasonCodes.MetaTooLarge, $"meta has {slot.Integer} bytes; the limit is {limits.MaxMetaBytes}");
            meta = slot.Text;
        }
        return new PromptRecord(id, prompt, meta);
    }

    private PreferenceRecord BuildPreference(Scratch s)
    {
        var id = Id(s, Field.Id);
        var prompt = Text(s, Field.Prompt);
        var chosen = Text(s, Field.Chosen);
        var rejected = Text(s, Field.Rejected);
        PreferenceRolloutIds? rolloutIds = null;
        if (Optional(s, Field.RolloutIds))
        {
            var token = s.Values[(int)Field.RolloutIds].Token;
            if (token != JsonTokenType.StartArray) throw new Rejection(ReasonCodes.WrongType, $"rollout_ids must be an array, got {TokenName(token)}");
            if (s.RolloutIdsProblem is { } problem) throw problem;
            var ids = s.RolloutIds!;
            if (ids.Count != 2 || s.RolloutIdsOverflow)
            {
                throw new Rejection(ReasonCodes.InvalidValue, $"rollout_ids must hold exactly two ids [chosen, rejected], got {(s.RolloutIdsOverflow ? "more than 3" : ids.Count.ToString(CultureInfo.InvariantCulture))}");
            }
            CheckId(ids[0], "rollout_ids[0]");
            CheckId(ids[1], "rollout_ids[1]");
            if (ids[0] == ids[1]) throw new Rejection(ReasonCodes.InvalidValue, "rollout_ids must name two different rollouts");
            rolloutIds = new PreferenceRolloutIds(ids[0], ids[1]);
        }
        if (chosen == rejected) throw new Rejection(ReasonCodes.IdenticalPair, "chosen and rejected are the same text: the pair carries no preference");
        return new PreferenceRecord(id, prompt, chosen, rejected, rolloutIds);
    }

    private RatingRecord BuildRating(Scratch s)
    {
        var id = Id(s, Field.Id);
        var prompt = Text(s, Field.Prompt);
        var completion = Text(s, Field.Completion);
        var reward = FiniteNumber(s, Field.Reward);
        if (Math.Abs(reward) > limits.MaxAbsReward)
        {
            throw new Rejection(ReasonCodes.OutOfRange, $"reward {reward.ToString("R", CultureInfo.InvariantCulture)} exceeds the limit |reward| <= {limits.MaxAbsReward.ToString(CultureInfo.InvariantCulture)}");
        }
        if (limits.GetRatingScale() is var (min, max) && (reward < min || reward > max))
        {
            throw new Rejection(ReasonCodes.OutOfRange,
                $"reward {reward.ToString("R", CultureInfo.InvariantCulture)} is outside the rating scale [{min.ToString("R", CultureInfo.InvariantCulture)}, {max.ToString("R", CultureInfo.InvariantCulture)}]");
        }
        var rolloutId = Optional(s, Field.RolloutId) ? Id(s, Field.RolloutId) : null;
        return new RatingRecord(id, prompt, completion, reward, rolloutId);
    }

    private RolloutRecord BuildRollout(Scratch s)
    {
        var id = Id(s, Field.Id);
        var promptId = Id(s, Field.PromptId);
        var prompt = Text(s, Field.Prompt);
        var completion = Text(s, Field.Completion);
        var version = Integer(s, Field.PolicyVersion);
        if (version < 0) throw new Rejection(ReasonCodes.OutOfRange, $"policy_version must be >= 0, got {version}");
        var logprob = FiniteNumber(s, Field.Logprob);
        if (logprob > 0) throw new Rejection(ReasonCodes.OutOfRange, $"logprob is a log-probability and must be <= 0, got {logprob.ToString("R", CultureInfo.InvariantCulture)}");
        string? finish = null;
        if (Optional(s, Field.FinishReason))
        {
            finish = String(s, Field.FinishReason);
            if (!RolloutRecord.FinishReasons.Contains(finish)) throw new Rejection(ReasonCodes.InvalidValue, $"finish_reason must be eos, stop or length, got '{Excerpt(finish)}'");
        }
        return new RolloutRecord(id, promptId, prompt, completion, version, logprob, finish);
    }

    private PolicyEvent BuildPolicy(Scratch s, bool isRollback)
    {
        if (Optional(s, Field.Kind))
        {
            var kind = String(s, Field.Kind);
            if (kind is not ("publish" or "rollback")) throw new Rejection(ReasonCodes.InvalidValue, $"kind must be \"publish\" or \"rollback\", got '{Excerpt(kind)}'");
        }
        var version = Integer(s, Field.Version);
        if (version < 1) throw new Rejection(ReasonCodes.OutOfRange, $"version must be >= 1, got {version}");
        long fromVersion = 0;
        string? reason = null;
        if (isRollback)
        {
            fromVersion = Integer(s, Field.FromVersion);
            if (fromVersion <= version) throw new Rejection(ReasonCodes.OutOfRange, $"a rollback goes back: from_version ({fromVersion}) must be greater than version ({version})");
            reason = Text(s, Field.Reason);
            if (string.IsNullOrWhiteSpace(reason)) throw new Rejection(ReasonCodes.InvalidValue, "reason of a rollback must not be blank");
        }
        var uri = String(s, Field.Uri);
        if (!ContractRules.IsAbsoluteUri(uri)) throw new Rejection(ReasonCodes.InvalidValue, $"uri must be an absolute URI with a scheme, at most {ContractRules.MaxUriLength} characters");
        var sha256 = String(s, Field.Sha256);
        if (!ContractRules.IsSha256Hex(sha256)) throw new Rejection(ReasonCodes.InvalidValue, "sha256 must be 64 hexadecimal characters");
        var createdText = String(s, Field.Created);
        if (!ContractRules.TryParseTimestamp(createdText, out var created))
        {
            throw new Rejection(ReasonCodes.InvalidValue, $"created must be an RFC 3339 timestamp with offset (e.g. 2024-05-01T12:00:00Z), got '{Excerpt(createdText)}'");
        }
        var metricsToken = s.Values[(int)Field.Metrics].Token;
        if (metricsToken != JsonTokenType.StartObject) throw new Rejection(ReasonCodes.WrongType, $"metrics must be an object, got {TokenName(metricsToken)}");
        if (s.MetricsProblem is { } problem) throw problem;
        var metrics = s.Metrics!;
        foreach (var name in metrics.Keys)
        {
            if (name.Length == 0) throw new Rejection(ReasonCodes.InvalidValue, "metric names must be non-empty");
        }
        Dictionary<string, string>? files = null;
        if (Optional(s, Field.Files))
        {
            var filesToken = s.Values[(int)Field.Files].Token;
            if (filesToken != JsonTokenType.StartObject) throw new Rejection(ReasonCodes.WrongType, $"files must be an object of file name -> SHA-256, got {TokenName(filesToken)}");
            if (s.FilesProblem is { } filesProblem) throw filesProblem;
            files = s.Files!;
            if (files.Count > ContractRules.MaxPolicyFiles) throw new Rejection(ReasonCodes.InvalidValue, $"files lists {files.Count} files; at most {ContractRules.MaxPolicyFiles}");
            foreach (var (name, hash) in files)
            {
                if (ContractRules.CheckFileName(name) is { } nameProblem) throw new Rejection(ReasonCodes.InvalidValue, $"files: the name '{Excerpt(name)}' {nameProblem}");
                if (!ContractRules.IsSha256Hex(hash)) throw new Rejection(ReasonCodes.InvalidValue, $"files.{name} must be a SHA-256 of 64 hexadecimal characters");
            }
        }
        try
        {
            return isRollback
                ? PolicyEvent.Rollback(fromVersion, version, reason!, uri, sha256, created, metrics, files)
                : PolicyEvent.Publish(version, uri, sha256, created, metrics, files);
        }
        catch (ArgumentException e)
        {
            // Defensive: every constructor invariant is checked above; if they ever drift apart the
            // record is still refused, never thrown at the caller.
            throw new Rejection(ReasonCodes.InvalidValue, OneLine(e.Message));
        }
    }

    // ---- field accessors (throw Rejection) --------------------------------------------------

    private static bool Optional(Scratch s, Field field) => s.Has(field) && s.Values[(int)field].Token != JsonTokenType.Null;

    private static string String(Scratch s, Field field)
    {
        var token = s.Values[(int)field].Token;
        if (token != JsonTokenType.String) throw new Rejection(ReasonCodes.WrongType, $"{FieldNames[(int)field]} must be a string, got {TokenName(token)}");
        return s.Values[(int)field].Text!;
    }

    private string Id(Scratch s, Field field)
    {
        var id = String(s, field);
        CheckId(id, FieldNames[(int)field]);
        return id;
    }

    private void CheckId(string id, string name)
    {
        if (id.Length > limits.MaxIdLength) throw new Rejection(ReasonCodes.IdTooLong, $"{name} has {id.Length} characters; the limit is {limits.MaxIdLength}");
        if (ContractRules.CheckId(id) is { } problem) throw new Rejection(ReasonCodes.InvalidId, $"{name} {problem}");
    }

    private string Text(Scratch s, Field field)
    {
        var text = String(s, field);
        if (text.Length > limits.MaxTextChars)
        {
            throw new Rejection(ReasonCodes.TextTooLong, $"{FieldNames[(int)field]} has {text.Length} characters; the limit is {limits.MaxTextChars}");
        }
        return text;
    }

    private static double FiniteNumber(Scratch s, Field field)
    {
        ref var slot = ref s.Values[(int)field];
        if (slot.Token == JsonTokenType.Number) return slot.Number; // finiteness checked while reading
        if (slot.Token == JsonTokenType.String && IsNonFiniteText(slot.Text!))
        {
            throw new Rejection(ReasonCodes.NonFiniteNumber, $"{FieldNames[(int)field]} is the string '{Excerpt(slot.Text!)}'; it must be a finite JSON number");
        }
        throw new Rejection(ReasonCodes.WrongType, $"{FieldNames[(int)field]} must be a number, got {TokenName(slot.Token)}");
    }

    private static long Integer(Scratch s, Field field)
    {
        ref var slot = ref s.Values[(int)field];
        if (slot.Token == JsonTokenType.Number && slot.IsInteger) return slot.Integer;
        if (slot.Token == JsonTokenType.Number) throw new Rejection(ReasonCodes.WrongType, $"{FieldNames[(int)field]} must be an integer");
        throw new Rejection(ReasonCodes.WrongType, $"{FieldNames[(int)field]} must be an integer, got {TokenName(slot.Token)}");
    }

    private static string? IdOf(StreamRecord record) => record switch
    {
        PromptRecord p => p.Id,
        PreferenceRecord p => p.Id,
        RatingRecord r => r.Id,
        RolloutRecord r => r.Id,
        _ => null,
    };

    // ---- helpers -----------------------------------------------------------------------------

    private static bool IsNonFiniteText(string text)
    {
        var trimmed = text.Trim();
        if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return !double.IsFinite(value);
        return trimmed.Equals("inf", StringComparison.OrdinalIgnoreCase)
               || trimmed.Equals("+inf", StringComparison.OrdinalIgnoreCase)
               || trimmed.Equals("-inf", StringComparison.OrdinalIgnoreCase)
               || trimmed.Equals("nan", StringComparison.OrdinalIgnoreCase)
               || trimmed.Equals("-nan", StringComparison.OrdinalIgnoreCase);
    }

    private static string? NonFiniteLiteralAt(ReadOnlySpan<byte> utf8, int position)
    {
        var i = Math.Clamp(position, 0, utf8.Length);
        while (i < utf8.Length && utf8[i] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)':' or (byte)',' or (byte)'[') i++;
        var rest = utf8[i..];
        foreach (var literal in NonFiniteLiterals)
        {
            if (rest.StartsWith(literal)) return Encoding.ASCII.GetString(literal);
        }
        return null;
    }

    private static readonly byte[][] NonFiniteLiterals = ["-Infinity"u8.ToArray(), "+Infinity"u8.ToArray(), "Infinity"u8.ToArray(), "-NaN"u8.ToArray(), "NaN"u8.ToArray()];

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> utf8)
    {
        var buffer = ArrayPool<char>.Shared.Rent(utf8.Length);
        try
        {
            Utf8.ToUtf16(utf8, buffer, out var read, out _, replaceInvalidSequences: false);
            return read;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static string TokenName(JsonTokenType token) => token switch
    {
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private static string Excerpt(string text) => text.Length <= 64 ? OneLine(text) : OneLine(text[..64]) + "…";

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    // ---- tables ------------------------------------------------------------------------------

    private enum Field
    {
        Schema, Id, Prompt, Meta, Chosen, Rejected, RolloutIds, Completion, Reward, RolloutId, PromptId,
        PolicyVersion, Logprob, Kind, Version, FromVersion, Reason, Uri, Sha256, Created, Metrics, FinishReason, Files,
    }

    private static readonly string[] FieldNames =
    [
        "schema", "id", "prompt", "meta", "chosen", "rejected", "rollout_ids", "completion", "reward", "rollout_id", "prompt_id",
        "policy_version", "logprob", "kind", "version", "from_version", "reason", "uri", "sha256", "created", "metrics", "finish_reason", "files",
    ];

    private static readonly byte[][] FieldNameBytes = FieldNames.Select(Encoding.UTF8.GetBytes).ToArray();

    private sealed record Spec(string Schema, uint Required, uint Optional)
    {
        public static readonly uint RollbackOnly = Bits(Field.FromVersion, Field.Reason);

        private static readonly Spec[] Specs =
        [
            new(SchemaNames.PromptV1, Bits(Field.Schema, Field.Id, Field.Prompt), Bits(Field.Meta)),
            new(SchemaNames.PreferenceV1, Bits(Field.Schema, Field.Id, Field.Prompt, Field.Chosen, Field.Rejected), Bits(Field.RolloutIds)),
            new(SchemaNames.RatingV1, Bits(Field.Schema, Field.Id, Field.Prompt, Field.Completion, Field.Reward), Bits(Field.RolloutId)),
            new(SchemaNames.RolloutV1, Bits(Field.Schema, Field.Id, Field.PromptId, Field.Prompt, Field.Completion, Field.PolicyVersion, Field.Logprob), Bits(Field.FinishReason)),
            new(SchemaNames.PolicyV1, Bits(Field.Schema, Field.Version, Field.Uri, Field.Sha256, Field.Created, Field.Metrics), Bits(Field.Kind, Field.Files)),
        ];

        public static Spec? For(string schema)
        {
            foreach (var spec in Specs)
            {
                if (spec.Schema == schema) return spec;
            }
            return null;
        }

        private static uint Bits(params Field[] fields)
        {
            uint bits = 0;
            foreach (var field in fields) bits |= 1u << (int)field;
            return bits;
        }
    }

    private struct FieldValue
    {
        public JsonTokenType Token;
        public string? Text;
        public double Number;
        public long Integer;
        public bool IsInteger;
    }

    /// <summary>Per-thread parse state, reused across records so the valid path allocates only the record's strings.</summary>
    private sealed class Scratch
    {
        public readonly FieldValue[] Values = new FieldValue[FieldNames.Length];
        public readonly List<HashSet<string>?> KeyStack = new();
        private readonly Stack<HashSet<string>> keySetPool = new();
        public uint Seen;
        public HashSet<string>? UnknownNames;
        public string? FirstUnknown;
        public Dictionary<string, double>? Metrics;
        public Rejection? MetricsProblem;
        public HashSet<string>? MetricsProblemNames;
        public Dictionary<string, string>? Files;
        public Rejection? FilesProblem;
        public HashSet<string>? FilesProblemNames;
        public List<string>? RolloutIds;
        public bool RolloutIdsOverflow;
        public Rejection? RolloutIdsProblem;

        public bool Has(Field field) => (Seen & (1u << (int)field)) != 0;

        public HashSet<string> RentKeySet() => keySetPool.Count > 0 ? keySetPool.Pop() : new HashSet<string>(StringComparer.Ordinal);

        public void ReturnKeySet(HashSet<string>? set)
        {
            if (set is null) return;
            set.Clear();
            if (keySetPool.Count < 64) keySetPool.Push(set);
        }

        public void Reset()
        {
            Array.Clear(Values);
            KeyStack.Clear();
            Seen = 0;
            UnknownNames = null;
            FirstUnknown = null;
            Metrics = null;
            MetricsProblem = null;
            MetricsProblemNames = null;
            Files = null;
            FilesProblem = null;
            FilesProblemNames = null;
            RolloutIds = null;
            RolloutIdsOverflow = false;
            RolloutIdsProblem = null;
        }
    }

    /// <summary>Internal control flow of the refusal path only (never escapes <see cref="Validate(ReadOnlySpan{byte}, RecordPosition?)"/>; <see cref="Parse"/> returns it for malformed JSON).</summary>
    private sealed class Rejection(string reason, string detail) : Exception(detail)
    {
        public string Reason { get; } = reason;
    }
}
