namespace PrefOnline.Benchmarks;

/// <summary>How <see cref="BenchmarkRunner"/> measures.</summary>
public sealed record BenchmarkRunOptions
{
    /// <summary>Measured rounds per side per case (interleaved: ours, reference, ours, ...).</summary>
    public int Rounds { get; init; } = 7;

    /// <summary>Unmeasured rounds per side first (thread pools, allocator caches, lazy init).</summary>
    public int WarmupRounds { get; init; } = 1;

    /// <summary>Intra-op threads on both sides.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Smaller sizes (a smoke run, not a measurement).</summary>
    public bool Quick { get; init; }

    /// <summary>Measure the PyTorch reference too (needs /usr/bin/python3 with torch).</summary>
    public bool WithReference { get; init; } = true;

    public string PythonPath { get; init; } = PythonReferenceSession.DefaultPythonPath;

    /// <summary>Only cases whose name contains this (case-insensitive); null runs every case.</summary>
    public string? CaseFilter { get; init; }

    public bool Selects(BenchmarkCase benchmarkCase) =>
        string.IsNullOrEmpty(CaseFilter) || benchmarkCase.Name.Contains(CaseFilter, StringComparison.OrdinalIgnoreCase);

    public void Validate()
    {
        if (Rounds < 1) throw new ArgumentOutOfRangeException(nameof(Rounds), Rounds, "at least one round");
        if (WarmupRounds < 0) throw new ArgumentOutOfRangeException(nameof(WarmupRounds), WarmupRounds, "cannot be negative");
        if (Threads < 1) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "at least one thread");
    }
}
