using System.Text.Json.Nodes;

namespace PrefOnline.Benchmarks;

/// <summary>
/// The PyTorch side of a <see cref="BenchmarkCase"/>: the harness calls <c>setup_{Function}(Arguments)</c>
/// in the benchmark's <see cref="IBenchmark.ReferenceSource"/>, and that returns the round function.
/// </summary>
/// <param name="Function">Name after <c>setup_</c> in the Python source.</param>
/// <param name="Arguments">JSON arguments (sizes, seeds, step counts): pass the same numbers the C# side uses.</param>
public sealed record ReferenceCase(string Function, JsonObject Arguments);
