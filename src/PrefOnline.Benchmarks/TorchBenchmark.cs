using System.Text.Json.Nodes;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Benchmarks;

/// <summary>
/// <c>prefonline bench torch</c>: TorchSharp (LibTorch 2.10) against Debian's PyTorch 1.13 on the same
/// threads. fp32 GEMM compares the two libtorch builds' BLAS (goal: at least 140 GFLOP/s on 2 threads);
/// the MLP train steps (forward + backward + AdamW) show what TorchSharp adds per op: the large one is
/// compute-bound, the tiny one is dominated by per-call overhead, which the op-call case measures alone.
/// </summary>
public sealed class TorchBenchmark : IBenchmark
{
    public string Name => "torch";

    public string Description => "fp32 GEMM GFLOP/s and MLP train steps/s, TorchSharp vs PyTorch";

    public string? ReferenceSource => GemmCase.ReferenceSource + """
        import torch.nn.functional as F

        def setup_op(args):
            a = torch.ones(4)
            b = torch.ones(4)
            ops = args["ops"]

            def round():
                for _ in range(ops):
                    torch.add(a, b)
            return round

        def setup_mlp(args):
            torch.manual_seed(args["seed"])
            batch, inputs, hidden, outputs = args["batch"], args["inputs"], args["hidden"], args["outputs"]
            model = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs))
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            x = torch.randn(batch, inputs)
            target = torch.randn(batch, outputs)
            steps = args["steps"]

            def round():
                for _ in range(steps):
                    optimizer.zero_grad(set_to_none=True)
                    loss = F.mse_loss(model(x), target)
                    loss.backward()
                    optimizer.step()
            return round
        """;

    public async Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var thread = context.TensorThread;
        var cases = new List<BenchmarkCase>();
        try
        {
            if (context.Quick)
            {
                cases.Add(await thread.RunAsync(() => new GemmCase(thread, "gemm 256x256x256 fp32", n: 256, iterations: 2), cancellationToken));
                cases.Add(await thread.RunAsync(() => new OpCase(thread, ops: 100), cancellationToken));
                cases.Add(await thread.RunAsync(() => new MlpCase(thread, batch: 8, inputs: 16, hidden: 32, outputs: 16, steps: 5), cancellationToken));
            }
            else
            {
                cases.Add(await thread.RunAsync(() => new GemmCase(thread, "gemm 1024x1024x1024 fp32", n: 1024, iterations: 10) { TargetThroughput = 140 }, cancellationToken));
                cases.Add(await thread.RunAsync(() => new OpCase(thread, ops: 20_000), cancellationToken));
                cases.Add(await thread.RunAsync(() => new MlpCase(thread, batch: 64, inputs: 256, hidden: 1024, outputs: 256, steps: 50), cancellationToken));
                cases.Add(await thread.RunAsync(() => new MlpCase(thread, batch: 16, inputs: 32, hidden: 64, outputs: 32, steps: 500), cancellationToken));
            }
            return cases;
        }
        catch
        {
            foreach (var c in cases) await c.DisposeAsync();
            throw;
        }
    }


    /// <summary>
    /// The cost of one op call itself: a 4-element add, result freed at once. On our side that is the
    /// P/Invoke and the Tensor object (TorchSharp); on PyTorch's the Python dispatch. ATen's own
    /// dispatch is in both.
    /// </summary>
    private sealed class OpCase : BenchmarkCase
    {
        private readonly TensorThread thread;
        private readonly int ops;
        private readonly Tensor a;
        private readonly Tensor b;

        public OpCase(TensorThread thread, int ops)
            : base("op call overhead (add of 4 floats)", "ops/s", ops)
        {
            this.thread = thread;
            this.ops = ops;
            a = ones([4]);
            b = ones([4]);
        }

        public override ReferenceCase Reference => new("op", new JsonObject { ["ops"] = ops });

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
            TimeOnTensorThreadAsync(thread, () =>
            {
                for (var i = 0; i < ops; i++) a.add(b).Dispose();
            }, cancellationToken);

        public override ValueTask DisposeAsync() => DisposeOnTensorThreadAsync(thread, a, b);
    }

    /// <summary>Linear → ReLU → Linear, MSE loss, AdamW(lr 1e-3): <c>steps</c> full train steps per round,
    /// TorchSharp's AdamW against torch.optim.AdamW's default (single-tensor) step.</summary>
    private sealed class MlpCase : BenchmarkCase
    {
        private const int Seed = 0;
        private readonly TensorThread thread;
        private readonly JsonObject arguments;
        private readonly int steps;
        private readonly Linear first;
        private readonly Linear second;
        private readonly AdamWOptimizer optimizer;
        private readonly Tensor x;
        private readonly Tensor target;

        public MlpCase(TensorThread thread, int batch, int inputs, int hidden, int outputs, int steps)
            : base($"mlp train step {inputs}-{hidden}-{outputs} batch {batch}", "steps/s", steps)
        {
            this.thread = thread;
            this.steps = steps;
            arguments = new JsonObject
            {
                ["seed"] = Seed, ["batch"] = batch, ["inputs"] = inputs, ["hidden"] = hidden, ["outputs"] = outputs, ["steps"] = steps,
            };
            using var generator = new Generator(Seed);
            first = nn.Linear(inputs, hidden);
            second = nn.Linear(hidden, outputs);
            optimizer = new AdamWOptimizer([.. first.parameters(), .. second.parameters()], new AdamWOptions { LearningRate = 1e-3 });
            x = randn([batch, inputs], generator: generator);
            target = randn([batch, outputs], generator: generator);
        }

        public override ReferenceCase Reference => new("mlp", arguments);

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
            TimeOnTensorThreadAsync(thread, () =>
            {
                for (var i = 0; i < steps; i++)
                {
                    using var scope = NewDisposeScope();
                    optimizer.ZeroGrad();
                    var loss = nn.functional.mse_loss(second.forward(first.forward(x).relu()), target);
                    loss.backward();
                    optimizer.Step();
                }
            }, cancellationToken);

        public override ValueTask DisposeAsync() => DisposeOnTensorThreadAsync(thread, optimizer, first, second, x, target);
    }
}
