namespace PrefOnline.Benchmarks;

/// <summary>Parameters of <see cref="IngestMeasurement"/>.</summary>
public sealed class IngestMeasurementOptions
{
    /// <summary>Records in the benchmark topic; each round reads all of them (default 100,000).</summary>
    public int Records { get; set; } = 100_000;

    /// <summary>
    /// Partitions of the benchmark topic (default 8). The mock broker keeps only about 5 MB per partition
    /// (older records are dropped, like retention), so Records × record size / Partitions must stay below that.
    /// </summary>
    public int Partitions { get; set; } = 8;

    /// <summary>Characters of each text field of the preference records (default 60: short prompt and answers; ~270 B per record).</summary>
    public int TextChars { get; set; } = 60;

    /// <summary>The kcat executable (a name on PATH or a path).</summary>
    public string Kcat { get; set; } = "kcat";

    /// <summary>Longest a single round may take before it is abandoned as failed.</summary>
    public TimeSpan RoundTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Records is < 1000 or > 10_000_000) problems.Add($"Records must be in 1000..10000000 (got {Records})");
        if (Partitions is < 1 or > 64) problems.Add($"Partitions must be in 1..64 (got {Partitions})");
        if (TextChars is < 1 or > 10_000) problems.Add($"TextChars must be in 1..10000 (got {TextChars})");
        if (string.IsNullOrWhiteSpace(Kcat)) problems.Add("Kcat is required");
        if (RoundTimeout <= TimeSpan.Zero) problems.Add("RoundTimeout must be positive");
        return problems;
    }
}
