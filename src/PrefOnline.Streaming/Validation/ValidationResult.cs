using System.Diagnostics.CodeAnalysis;
using PrefOnline.Streaming.Contracts;

namespace PrefOnline.Streaming.Validation;

/// <summary>Either a parsed record or the reason it was refused.</summary>
public readonly struct ValidationResult
{
    private ValidationResult(StreamRecord? record, ValidationFailure? failure)
    {
        Record = record;
        Failure = failure;
    }

    public StreamRecord? Record { get; }

    public ValidationFailure? Failure { get; }

    [MemberNotNullWhen(true, nameof(Record))]
    [MemberNotNullWhen(false, nameof(Failure))]
    public bool IsValid => Record is not null;

    public static ValidationResult Valid(StreamRecord record) => new(record ?? throw new ArgumentNullException(nameof(record)), null);

    public static ValidationResult Invalid(string reason, string detail) => new(null, new ValidationFailure(reason, detail));

    public static ValidationResult Invalid(ValidationFailure failure) => new(null, failure ?? throw new ArgumentNullException(nameof(failure)));

    public override string ToString() => IsValid ? $"valid {Record.Schema}" : Failure.ToString();
}
