namespace PrefOnline.Learning.Objectives;

/// <summary>A constant KL coefficient (0 turns the penalty off).</summary>
public sealed class FixedKlController : IKlController
{
    public FixedKlController(double coefficient)
    {
        Restore(coefficient);
    }

    public double Coefficient { get; private set; }

    public void Update(double observedKl, long samples)
    {
    }

    public void Restore(double coefficient)
    {
        if (!(coefficient >= 0) || double.IsInfinity(coefficient))
            throw new ArgumentOutOfRangeException(nameof(coefficient), coefficient, "the KL coefficient must be a finite number ≥ 0");
        Coefficient = coefficient;
    }
}
