namespace PrefOnline.Learning.Tests.Guardrails;

/// <summary>Seeded synthetic streams for the drift tests (Box–Muller normals, discrete ratings).</summary>
internal sealed class SeededNoise(int seed)
{
    private readonly Random random = new(seed);

    public double Normal(double mean = 0, double stdDev = 1)
    {
        var u1 = 1.0 - random.NextDouble(); // (0, 1]: log(0) is -inf
        var u2 = random.NextDouble();
        return mean + stdDev * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>An integer rating 1..5, uniform: coarse and non-Gaussian like star ratings.</summary>
    public double Stars() => random.Next(1, 6);

    public bool Bernoulli(double p) => random.NextDouble() < p;
}
