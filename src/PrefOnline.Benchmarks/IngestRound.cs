namespace PrefOnline.Benchmarks;

/// <summary>One timed pass over the benchmark topic: <see cref="Records"/> read in <see cref="Seconds"/> (from the first record to the last; connecting and joining excluded on both sides).</summary>
public readonly record struct IngestRound(string Side, long Records, double Seconds)
{
    public double RecordsPerSecond => Records / Seconds;
}
