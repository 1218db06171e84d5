namespace PrefOnline.Streaming.Validation;

/// <summary>Why a record was refused: a stable <see cref="Reason"/> code (<see cref="ReasonCodes"/>) and a one-line human <see cref="Detail"/>.</summary>
public sealed record ValidationFailure(string Reason, string Detail)
{
    /// <summary>For <see cref="ReasonCodes.ValidatorError"/>: the unexpected exception, so the intake can log its type and stack.</summary>
    public Exception? Exception { get; init; }

    public override string ToString() => $"{Reason}: {Detail}";
}
