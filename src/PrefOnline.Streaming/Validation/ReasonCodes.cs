namespace PrefOnline.Streaming.Validation;

/// <summary>
/// Stable, machine-readable reasons a record is refused. They appear in the dead-letter header
/// <c>reason</c> and as the <c>result</c> label of <c>prefonline_messages_total</c>; operators alert and
/// script on them, so a code is never renamed or reused for another meaning. Checks run in the order
/// listed (bytes, then JSON structure, then schema, then fields, then duplicates): a record with several
/// problems reports the first.
/// </summary>
public static class ReasonCodes
{
    /// <summary>Zero bytes (a null or empty Kafka value, e.g. a tombstone).</summary>
    public const string EmptyRecord = "empty-record";

    /// <summary>More bytes than <see cref="ValidationLimits.MaxRecordBytes"/>.</summary>
    public const string RecordTooLarge = "record-too-large";

    /// <summary>Contains raw control bytes (0x00–0x08, 0x0B, 0x0C, 0x0E–0x1F) that no JSON text can hold: binary data (Avro, protobuf, compressed bytes...).</summary>
    public const string BinaryData = "binary-data";

    /// <summary>Not valid UTF-8: invalid or truncated sequences, overlong encodings, encoded surrogates (CESU-8), code points above U+10FFFF.</summary>
    public const string InvalidUtf8 = "invalid-utf8";

    /// <summary>A \u escape encodes an unpaired UTF-16 surrogate (e.g. "\ud800"): not a Unicode string.</summary>
    public const string LoneSurrogate = "lone-surrogate";

    /// <summary>Not well-formed JSON (RFC 8259): syntax errors, comments, trailing commas, trailing data, a BOM, literal NaN/Infinity are reported as <see cref="NonFiniteNumber"/> instead.</summary>
    public const string InvalidJson = "invalid-json";

    /// <summary>Valid JSON whose top-level value is not an object.</summary>
    public const string NotAnObject = "not-an-object";

    /// <summary>Objects/arrays nested deeper than <see cref="ValidationLimits.MaxJsonDepth"/>.</summary>
    public const string TooDeep = "too-deep";

    /// <summary>An object holds the same key twice (anywhere in the record; JSON parsers disagree on which one wins).</summary>
    public const string DuplicateKey = "duplicate-key";

    /// <summary>NaN or ±Infinity: as a bare literal, as a number that overflows a double (1e999), or as a string where a number is expected ("NaN").</summary>
    public const string NonFiniteNumber = "non-finite-number";

    /// <summary>No <c>schema</c> field.</summary>
    public const string MissingSchema = "missing-schema";

    /// <summary><c>schema</c> names no contract this build knows (e.g. a future v2, a typo).</summary>
    public const string UnknownSchema = "unknown-schema";

    /// <summary>A known schema that this topic does not carry (e.g. a rollout on the prompts topic).</summary>
    public const string UnexpectedSchema = "unexpected-schema";

    /// <summary>A field the schema does not define (policy <see cref="UnknownFieldPolicy.Reject"/>).</summary>
    public const string UnknownField = "unknown-field";

    /// <summary>A required field is absent.</summary>
    public const string MissingField = "missing-field";

    /// <summary>A field has the wrong JSON type (including null for a required field, or a fractional number where an integer is required).</summary>
    public const string WrongType = "wrong-type";

    /// <summary>An id is empty, blank or contains control characters or unpaired surrogates.</summary>
    public const string InvalidId = "invalid-id";

    /// <summary>An id is longer than <see cref="ValidationLimits.MaxIdLength"/>.</summary>
    public const string IdTooLong = "id-too-long";

    /// <summary>A text field is longer than <see cref="ValidationLimits.MaxTextChars"/>.</summary>
    public const string TextTooLong = "text-too-long";

    /// <summary><c>meta</c> is larger than <see cref="ValidationLimits.MaxMetaBytes"/>.</summary>
    public const string MetaTooLarge = "meta-too-large";

    /// <summary>A number outside its range (|reward| above the limit, a rating outside the deployment's rating scale, logprob &gt; 0, negative versions, rollback not going back).</summary>
    public const string OutOfRange = "out-of-range";

    /// <summary>A value with the right type but an invalid form (sha256 not 64 hex, relative uri, bad timestamp, unknown kind, rollout_ids not two distinct ids).</summary>
    public const string InvalidValue = "invalid-value";

    /// <summary>A preference whose chosen and rejected texts are identical: it carries no preference.</summary>
    public const string IdenticalPair = "identical-pair";

    /// <summary>The record's id was already seen at another position within the duplicate window.</summary>
    public const string DuplicateId = "duplicate-id";

    /// <summary>
    /// Validating the record raised an exception no check anticipated (a validator bug, not the producer's
    /// fault as far as we know): the record is dead-lettered rather than faulting the stage, and the exception
    /// type is logged. Not a step of the check order: it can replace any of the reasons above.
    /// </summary>
    public const string ValidatorError = "validator-error";

    /// <summary>Every code, in check order (<see cref="ValidatorError"/> last: it is no step of that order).</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        EmptyRecord, RecordTooLarge, BinaryData, InvalidUtf8, LoneSurrogate, InvalidJson, NotAnObject, TooDeep, DuplicateKey,
        NonFiniteNumber, MissingSchema, UnknownSchema, UnexpectedSchema, UnknownField, MissingField, WrongType, InvalidId, IdTooLong,
        TextTooLong, MetaTooLarge, OutOfRange, InvalidValue, IdenticalPair, DuplicateId, ValidatorError,
    ];
}
