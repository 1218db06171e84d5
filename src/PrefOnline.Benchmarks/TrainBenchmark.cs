using System.Diagnostics;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Benchmarks;

/// <summary>
/// <c>prefonline bench train</c>: one GPT-2 language-model train step (forward, cross-entropy,
/// backward, AdamW) on the PolicyModel beside the identical model written in plain PyTorch, same
/// shapes, threads and optimizer. Goal: at least 1.4x PyTorch 1.13 eager's tokens/s. Each preset is reported
/// twice: tokens/s, and model FLOP utilisation (MFU, both sides) against the fp32 GEMM peak our side
/// measures at the start of the same run (logged; the first row re-measures GEMM beside PyTorch's),
/// using nanoGPT's count of 6·N + 12·L·C·T flop per trained token (N = parameters without the
/// position table; the tied LM head counts through wte).
/// </summary>
public sealed class TrainBenchmark : IBenchmark
{
    public string Name => "train";

    public string Description => "GPT-2 train step (forward + backward + AdamW) tokens/s and MFU, PolicyModel vs the same model in PyTorch";

    public string? ReferenceSource => GemmCase.ReferenceSource + """
        import math
        import torch.nn as nn
        import torch.nn.functional as F

        class Conv1D(nn.Module):
            def __init__(self, n_in, n_out):
                super().__init__()
                self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.02)
                self.bias = nn.Parameter(torch.zeros(n_out))

            def forward(self, x):
                return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], -1)

        class Attention(nn.Module):
            def __init__(self, width, heads):
                super().__init__()
                self.heads = heads
                self.c_attn = Conv1D(width, 3 * width)
                self.c_proj = Conv1D(width, width)

            def forward(self, x, hide):
                B, T, C = x.shape
                D = C // self.heads
                q, k, v = self.c_attn(x).split(C, dim=2)
                q = q.view(B, T, self.heads, D).transpose(1, 2)
                k = k.view(B, T, self.heads, D).transpose(1, 2)
                v = v.view(B, T, self.heads, D).transpose(1, 2)
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
                att = att.masked_fill(hide, torch.finfo(att.dtype).min).softmax(dim=-1)
                y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
                return self.c_proj(y)

        class Mlp(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.c_fc = Conv1D(width, 4 * width)
                self.c_proj = Conv1D(4 * width, width)

            def forward(self, x):
                return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

        class Block(nn.Module):
            def __init__(self, width, heads, eps):
                super().__init__()
                self.ln_1 = nn.LayerNorm(width, eps=eps)
                self.attn = Attention(width, heads)
                self.ln_2 = nn.LayerNorm(width, eps=eps)
                self.mlp = Mlp(width)

            def forward(self, x, hide):
                x = x + self.attn(self.ln_1(x), hide)
                return x + self.mlp(self.ln_2(x))

        class Gpt2(nn.Module):
            def __init__(self, a):
                super().__init__()
                self.wte = nn.Embedding(a["vocab"], a["width"])
                self.wpe = nn.Embedding(a["positions"], a["width"])
                self.h = nn.ModuleList([Block(a["width"], a["heads"], a["eps"]) for _ in range(a["layers"])])
                self.ln_f = nn.LayerNorm(a["width"], eps=a["eps"])

            def forward(self, tokens):
                T = tokens.size(1)
                hide = torch.ones(T, T, dtype=torch.bool).triu(1).view(1, 1, T, T)
                x = self.wte(tokens) + self.wpe(torch.arange(T).unsqueeze(0))
                for block in self.h:
                    x = block(x, hide)
                return F.linear(self.ln_f(x), self.wte.weight)

        def setup_train(args):
            torch.manual_seed(args["seed"])
            model = Gpt2(args)
            optimizer = torch.optim.AdamW(model.parameters(), lr=args["lr"], weight_decay=args["weight_decay"])
            g = torch.Generator().manual_seed(args["seed"])
            data = torch.randint(0, 256, (args["batch"], args["time"] + 1), generator=g)
            x, y = data[:, :-1].contiguous(), data[:, 1:].reshape(-1)
            vocab, steps = args["vocab"], args["steps"]

            def round():
                for _ in range(steps):
                    optimizer.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(x).view(-1, vocab), y)
                    loss.backward()
                    optimizer.step()
            return round
        """;

    public async Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var thread = context.TensorThread;
        var (gemmSize, gemmIterations) = context.Quick ? (256, 2) : (1024, 8);
        var peak = await thread.RunAsync(() => MeasureGemmPeak(gemmSize, gemmIterations), cancellationToken);
        context.Log.WriteLine($"[bench] train: fp32 GEMM peak {peak / 1e9:F1} GFLOP/s ({gemmSize}³, best of 10): the MFU denominator");

        (string Name, Gpt2Config Config, int Batch, int Time, int Steps)[] shapes = context.Quick
            ? [("micro", new Gpt2Config { Layers = 2, Heads = 2, Width = 32, ContextLength = 32 }, 2, 16, 2)]
            : [("tiny", Gpt2Config.Tiny(), 8, 256, 4), ("small", Gpt2Config.Small(), 8, 256, 1)];

        var cases = new List<BenchmarkCase>();
        try
        {
            cases.Add(await thread.RunAsync(() => new GemmCase(thread, $"gemm peak {gemmSize}³ fp32", gemmSize, gemmIterations), cancellationToken));
            foreach (var (name, config, batch, time, steps) in shapes)
            {
                cases.Add(await thread.RunAsync(() => new TrainStepCase(thread, name, config, batch, time, steps, gemmPeak: null), cancellationToken));
                cases.Add(await thread.RunAsync(() => new TrainStepCase(thread, name, config, batch, time, steps, peak), cancellationToken));
            }
            return cases;
        }
        catch
        {
            foreach (var c in cases) await c.DisposeAsync();
            throw;
        }
    }

    /// <summary>Model flop of one trained token (nanoGPT's estimate_mfu): 6·N + 12·L·C·T, N without wpe.</summary>
    public static double FlopPerToken(Gpt2Config config, int time)
    {
        double c = config.Width;
        var blocks = config.Layers * (12 * c * c + 13 * c);          // ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj
        var n = config.VocabularySize * c + blocks + 2 * c;          // wte (also the LM head) + blocks + ln_f
        return 6 * n + 12.0 * config.Layers * c * time;
    }

    /// <summary>Best-of-10 fp32 GEMM flop/s on this thread: the MFU denominator. On a busy machine it
    /// comes out low and the MFU rows high; compare MFU only from a quiet run.</summary>
    private static double MeasureGemmPeak(int n, int iterations)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(0);
        var a = randn([n, n], generator: generator);
        var b = randn([n, n], generator: generator);
        a.matmul(b).Dispose();
        var best = double.MaxValue;
        for (var round = 0; round < 10; round++)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++) a.matmul(b).Dispose();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n * iterations / best;
    }


    /// <summary>
    /// <c>steps</c> LM train steps on random byte tokens per round. Reported in tokens/s, or, given
    /// the GEMM peak, in percent of it (model flop per second ÷ peak · 100: the MFU).
    /// </summary>
    private sealed class TrainStepCase : BenchmarkCase
    {
        private const int Seed = 0;
        private const double LearningRate = 1e-4;
        private const double WeightDecay = 0.01;
        private readonly TensorThread thread;
        private readonly JsonObject arguments;
        private readonly int steps;
        private readonly PolicyModel model;
        private readonly AdamWOptimizer optimizer;
        private readonly Tensor inputs;
        private readonly Tensor targets;

        public TrainStepCase(TensorThread thread, string name, Gpt2Config config, int batch, int time, int steps, double? gemmPeak)
            : base(
                gemmPeak is null ? $"train step {name} b{batch}x{time}" : $"train step {name} b{batch}x{time} MFU",
                gemmPeak is null ? "tokens/s" : "% GEMM peak",
                gemmPeak is { } peak ? 100.0 * steps * batch * time * FlopPerToken(config, time) / peak : (double)steps * batch * time)
        {
            this.thread = thread;
            this.steps = steps;
            arguments = new JsonObject
            {
                ["seed"] = Seed, ["vocab"] = config.VocabularySize, ["positions"] = config.ContextLength, ["width"] = config.Width,
                ["layers"] = config.Layers, ["heads"] = config.Heads, ["eps"] = config.LayerNormEpsilon,
                ["batch"] = batch, ["time"] = time, ["steps"] = steps, ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
            };
            model = PolicyModel.Create(config, Seed);
            optimizer = new AdamWOptimizer(model.parameters(), new AdamWOptions { LearningRate = LearningRate, WeightDecay = WeightDecay });
            using var scope = NewDisposeScope();
            using var generator = new Generator(Seed);
            var data = randint(0, 256, [batch, time + 1], generator: generator);
            inputs = data.narrow(1, 0, time).contiguous().DetachFromDisposeScope();          // (B, T)
            targets = data.narrow(1, 1, time).reshape(-1).DetachFromDisposeScope();          // (B·T)
        }

        public override ReferenceCase Reference => new("train", arguments);

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
            TimeOnTensorThreadAsync(thread, () =>
            {
                for (var i = 0; i < steps; i++)
                {
                    using var scope = NewDisposeScope();
                    optimizer.ZeroGrad();
                    var logits = model.Forward(inputs);                                    // (B, T, V)
                    var loss = nn.functional.cross_entropy(logits.view(-1, model.Config.VocabularySize), targets);
                    loss.backward();
                    optimizer.Step();
                }
            }, cancellationToken);

        public override ValueTask DisposeAsync() => DisposeOnTensorThreadAsync(thread, optimizer, model, inputs, targets);
    }
}
