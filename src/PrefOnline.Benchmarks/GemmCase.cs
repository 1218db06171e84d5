using System.Text.Json.Nodes;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Benchmarks;

/// <summary>
/// C = A·B for square fp32 matrices, <c>iterations</c> times per round (2n³ flop each): the GEMM
/// peak other benchmarks compare against (bench torch reports it; bench train divides by it for MFU).
/// </summary>
internal sealed class GemmCase : BenchmarkCase
{
    /// <summary>The PyTorch side of this case; benchmarks that include it add this to their ReferenceSource.</summary>
    public const string ReferenceSource = """

        def setup_gemm(args):
            n, iterations = args["n"], args["iterations"]
            g = torch.Generator().manual_seed(0)
            a = torch.randn(n, n, generator=g)
            b = torch.randn(n, n, generator=g)

            def round():
                for _ in range(iterations):
                    torch.matmul(a, b)
            return round

        """;

    private readonly TensorThread thread;
    private readonly int n;
    private readonly int iterations;
    private readonly Tensor a;
    private readonly Tensor b;

    public GemmCase(TensorThread thread, string name, int n, int iterations)
        : base(name, "GFLOP/s", 2.0 * n * n * n * iterations / 1e9)
    {
        this.thread = thread;
        this.n = n;
        this.iterations = iterations;
        using var generator = new Generator(0);
        a = randn([n, n], generator: generator);
        b = randn([n, n], generator: generator);
    }

    public override ReferenceCase Reference => new("gemm", new JsonObject { ["n"] = n, ["iterations"] = iterations });

    public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
        TimeOnTensorThreadAsync(thread, () =>
        {
            for (var i = 0; i < iterations; i++) a.matmul(b).Dispose();
        }, cancellationToken);

    public override ValueTask DisposeAsync() => DisposeOnTensorThreadAsync(thread, a, b);
}
