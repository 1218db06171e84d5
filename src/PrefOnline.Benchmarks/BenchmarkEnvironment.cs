namespace PrefOnline.Benchmarks;

/// <summary>What the numbers were measured on, printed above the table and stored in the JSON.</summary>
public sealed record BenchmarkEnvironment
{
    public required DateTimeOffset Started { get; init; }
    public required int ProcessorCount { get; init; }
    public required int Threads { get; init; }
    public required int Rounds { get; init; }
    public required bool Quick { get; init; }
    public string? Libtorch { get; init; }
    public int? LibtorchThreads { get; init; }
    public string? TorchSharp { get; init; }
    public string? ReferenceTorch { get; init; }
    public string? ReferencePython { get; init; }
    public int? ReferenceThreads { get; init; }
}
