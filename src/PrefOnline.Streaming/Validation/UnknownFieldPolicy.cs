namespace PrefOnline.Streaming.Validation;

/// <summary>What to do with a top-level field the record's schema does not define.</summary>
/// <remarks>
/// Default <see cref="Reject"/>: contracts are versioned (<c>.v1</c>), so a new field arrives with a new
/// schema version; an unexpected field in a v1 record is most often a typo (<c>"rewrad"</c>) whose
/// intended value would otherwise be silently lost. <see cref="Ignore"/> suits producers that decorate
/// records (e.g. tracing ids): ignored fields are still checked for well-formed JSON, depth, duplicate
/// keys, finite numbers and valid strings, and are dropped from the parsed record.
/// </remarks>
public enum UnknownFieldPolicy
{
    /// <summary>Dead-letter the record with reason <c>unknown-field</c>.</summary>
    Reject = 0,

    /// <summary>Accept the record and drop the field.</summary>
    Ignore = 1,
}
