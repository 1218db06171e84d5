namespace PrefOnline.Streaming.Validation;

/// <summary>Why a record was refused: a stable <see cref="Reason"/> code (<see cref="ReasonCodes"/>) and a one-line human <see cref="Detail"/>.</summary>
public sealed record ValidationFailure(string Reason, string Detail)
{
    public override string ToString() => $"{Reason}: {Detail}";
}
