namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// A validated message of one of the contracts in <see cref="SchemaNames"/>. Instances are immutable;
/// constructors enforce every invariant that does not depend on configurable limits, so a record built
/// in code serializes to bytes that <see cref="Validation.RecordValidator"/> accepts under default limits.
/// </summary>
public abstract record StreamRecord
{
    private protected StreamRecord()
    {
    }

    /// <summary>The contract's schema name (<see cref="SchemaNames"/>).</summary>
    public abstract string Schema { get; }
}
