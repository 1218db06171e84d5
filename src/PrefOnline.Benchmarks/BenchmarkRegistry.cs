
namespace PrefOnline.Benchmarks;

/// <summary>Every sub-benchmark <c>prefonline bench</c> knows, in the order <c>all</c> runs them.</summary>
public static class BenchmarkRegistry
{
    public const string AllName = "all";

    /// <summary>One line per sub-benchmark (each defined in its own file in this folder).</summary>
    private static IEnumerable<IBenchmark> Create()
    {
        yield return new TorchBenchmark();
        yield return new TrainBenchmark();
        yield return new GenerateBenchmark();
        yield return new IngestBenchmark();
        yield return new FreshnessBenchmark();
    }

    public static IReadOnlyList<IBenchmark> All { get; } = Create().ToList();

    public static IReadOnlyList<string> Names => All.Select(b => b.Name).Append(AllName).ToList();

    /// <summary>The benchmarks <paramref name="name"/> selects ("all" = every one); unknown names throw with the valid ones.</summary>
    public static IReadOnlyList<IBenchmark> Select(string name)
    {
        if (string.Equals(name, AllName, StringComparison.OrdinalIgnoreCase)) return All;
        var match = All.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase));
        return match is not null
            ? [match]
            : throw new ArgumentException($"unknown benchmark '{name}'; choose one of: {string.Join(", ", Names)}");
    }
}
