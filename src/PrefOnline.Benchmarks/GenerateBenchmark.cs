using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Benchmarks;

/// <summary>
/// <c>prefonline bench generate</c>: sampling tokens/s of the policy's two decoders, each in its own
/// row — the fused native CPU decoder (<see cref="FusedPolicyDecoder"/>, what the worker uses for
/// float32 on the CPU) and the TorchSharp decoder (<see cref="TorchSharpDecoder"/>, every other
/// placement) — against PyTorch eager made fair first: a preallocated KV
/// cache written in place (no torch.cat growth), the LM head on the last prefill position only,
/// torch.inference_mode, torch.multinomial on the softmax; same shapes and threads: prompts of 16
/// tokens, 64 new tokens, batch 1 and 16, presets <c>tiny</c> and <c>small</c>.
/// Batch 1 streams every weight once per token, so it is bounded by memory bandwidth: the
/// "copy bandwidth" case measures that bound first in the same run (STREAM convention: bytes read +
/// written per second), and each batch-1 row notes its fraction of it:
/// (tokens/s × weight bytes per token) ÷ copy bandwidth, for both sides. (Weights that fit in the
/// caches, like tiny's 3.3 MB, can stream faster than memory: a fraction above 1.)
/// </summary>
public sealed class GenerateBenchmark : IBenchmark
{
    private const int PromptTokens = 16;
    private const int NewTokens = 64;

    public string Name => "generate";

    public string Description => "sampling tokens/s (prompt 16, 64 new; batch 1 and 16; tiny and small) vs a PyTorch eager loop with a preallocated KV cache";

    public string? ReferenceSource => """
        import math
        import torch.nn as nn
        import torch.nn.functional as F

        class Block(nn.Module):
            def __init__(self, width, heads, eps):
                super().__init__()
                self.heads = heads
                self.ln_1 = nn.LayerNorm(width, eps=eps)
                self.c_attn = nn.Linear(width, 3 * width)
                self.c_proj = nn.Linear(width, width)
                self.ln_2 = nn.LayerNorm(width, eps=eps)
                self.c_fc = nn.Linear(width, 4 * width)
                self.mlp_proj = nn.Linear(4 * width, width)

            def forward(self, x, cache, start):
                B, T, C = x.shape
                H = self.heads
                q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
                q = q.view(B, T, H, C // H).transpose(1, 2)
                cache[0][:, :, start:start + T] = k.view(B, T, H, C // H).transpose(1, 2)
                cache[1][:, :, start:start + T] = v.view(B, T, H, C // H).transpose(1, 2)
                k = cache[0][:, :, :start + T]
                v = cache[1][:, :, :start + T]
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                if T > 1:
                    mask = torch.ones(T, k.size(2), dtype=torch.bool).tril(k.size(2) - T)
                    att = att.masked_fill(~mask, float("-inf"))
                y = (att.softmax(dim=-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
                x = x + self.c_proj(y)
                return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

        class Gpt2(nn.Module):
            def __init__(self, vocab, context, layers, heads, width, eps):
                super().__init__()
                self.wte = nn.Embedding(vocab, width)
                self.wpe = nn.Embedding(context, width)
                self.h = nn.ModuleList([Block(width, heads, eps) for _ in range(layers)])
                self.ln_f = nn.LayerNorm(width, eps=eps)

            def forward(self, idx, start, caches):
                positions = torch.arange(start, start + idx.size(1))
                x = self.wte(idx) + self.wpe(positions)
                for block, cache in zip(self.h, caches):
                    x = block(x, cache, start)
                # The LM head on the last position only: the only logits sampling reads.
                return self.ln_f(x[:, -1]) @ self.wte.weight.t()

        def setup_generate(args):
            torch.manual_seed(args["seed"])
            model = Gpt2(args["vocab"], args["context"], args["layers"], args["heads"], args["width"], args["eps"]).eval()
            g = torch.Generator().manual_seed(args["seed"])
            B, P, N, H, C = args["batch"], args["prompt"], args["new"], args["heads"], args["width"]
            prompts = torch.randint(0, args["vocab"], (B, P), generator=g)
            caches = [(torch.empty(B, H, P + N, C // H), torch.empty(B, H, P + N, C // H)) for _ in range(args["layers"])]

            @torch.inference_mode()
            def round():
                logits = model(prompts, 0, caches)
                position = P
                for i in range(N):
                    token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=g)
                    if i + 1 < N:
                        logits = model(token, position, caches)
                        position += 1
            return round

        def setup_copy(args):
            n = args["bytes"] // 4
            src = torch.ones(n)
            dst = torch.empty(n)
            repeats = args["repeats"]

            def round():
                for _ in range(repeats):
                    dst.copy_(src)
            return round
        """;

    public async Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var thread = context.TensorThread;
        var cases = new List<BenchmarkCase>();
        try
        {
            var copyBytes = context.Quick ? 16L << 20 : 256L << 20;
            cases.Add(new CopyCase(context.Threads, copyBytes, repeats: context.Quick ? 1 : 4));
            var presets = context.Quick
                ? new[] { ("tiny", Gpt2Config.Tiny() with { Layers = 1 }) }
                : new[] { ("tiny", Gpt2Config.Tiny()), ("small", Gpt2Config.Small()) };
            foreach (var (name, config) in presets)
            foreach (var batch in context.Quick ? new[] { 1, 4 } : new[] { 1, 16 })
            foreach (var decoders in new[] { PolicyDecoderFactory.FusedOnly, PolicyDecoderFactory.TorchSharpOnly })
            {
                var newTokens = context.Quick ? 8 : NewTokens;
                cases.Add(await thread.RunAsync(() => new GenerateCase(thread, name, config, batch, PromptTokens, newTokens, decoders), cancellationToken));
            }
            return cases;
        }
        catch
        {
            foreach (var c in cases) await c.DisposeAsync();
            throw;
        }
    }

    /// <summary>One generate call per round: <c>batch</c> random prompts, <c>newTokens</c> sampled
    /// tokens each at temperature 1 (no end-of-sequence, so every row runs to the end).</summary>
    private sealed class GenerateCase : BenchmarkCase
    {
        private const int Seed = 0;
        private readonly TensorThread thread;
        private readonly JsonObject arguments;
        private readonly PolicyModel model;
        private readonly IPolicyDecoder decoder;
        private readonly DecodeRequest request;

        public GenerateCase(TensorThread thread, string preset, Gpt2Config config, int batch, int promptTokens, int newTokens, PolicyDecoderFactory decoders)
            : base(Label(preset, batch, promptTokens, newTokens, decoders.Backends[0].Name), "tokens/s", (double)batch * newTokens)
        {
            this.thread = thread;
            arguments = new JsonObject
            {
                ["seed"] = Seed, ["vocab"] = config.VocabularySize, ["context"] = config.ContextLength, ["layers"] = config.Layers,
                ["heads"] = config.Heads, ["width"] = config.Width, ["eps"] = config.LayerNormEpsilon, ["batch"] = batch,
                ["prompt"] = promptTokens, ["new"] = newTokens,
            };
            model = PolicyModel.Create(config, Seed);
            decoder = decoders.Create(model);
            var random = new Random(Seed);
            request = new DecodeRequest
            {
                Prompts = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, promptTokens).Select(_ => random.Next(config.VocabularySize)).ToArray()).ToArray(),
                MaxNewTokens = newTokens,
                RowSeeds = Enumerable.Range(0, batch).Select(i => (ulong)i).ToArray(),
            };
        }

        public override ReferenceCase Reference => new("generate", arguments);

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
            TimeOnTensorThreadAsync(thread, () => decoder.Generate(request, cancellationToken), cancellationToken);

        /// <summary>At batch 1: the weight bytes streamed per second as a fraction of the copy bandwidth
        /// measured earlier in this run (the faster side's median, so both sides face the same bound).</summary>
        public override string? Note(BenchmarkCaseResult result, IReadOnlyList<BenchmarkCaseResult> earlier)
        {
            var backend = $"decoder backend: {decoder.Backend}";
            if (request.Prompts.Count != 1) return backend;
            var copy = earlier.LastOrDefault(r => r.Case.StartsWith(CopyCase.NamePrefix, StringComparison.Ordinal));
            if (copy is null) return backend;
            var bound = Math.Max(copy.Ours.Median, copy.Reference?.Median ?? 0);
            var bytes = (double)WeightBytesPerToken((Gpt2Config)model.Config);
            string Side(string who, double tokensPerSecond)
            {
                var stream = tokensPerSecond * bytes / 1e9;
                return FormattableString.Invariant($"{who} {stream:F1} GB/s = {100 * stream / bound:F0}%");
            }
            var note = FormattableString.Invariant($"{backend}; weights streamed ({bytes / 1e6:F1} MB/token, median rounds) vs copy bandwidth {bound:F1} GB/s: ")
                       + Side("ours", result.Ours.Median);
            if (result.Reference is not null) note += ", " + Side("PyTorch", result.Reference.Median);
            return note + " (above 100%: part of the weights stays in the CPU caches between tokens)";
        }

        public override ValueTask DisposeAsync() => DisposeOnTensorThreadAsync(thread, decoder, model);

        private static string Label(string preset, int batch, int promptTokens, int newTokens, string backend) =>
            $"generate {preset} b{batch} (prompt {promptTokens}, {newTokens} new) {backend}";

        /// <summary>
        /// Weight bytes one decode step must read at batch 1 (float32): the whole token embedding (it is
        /// also the LM head), every block weight, the final norm, and one row of the position table. The
        /// memory-bandwidth bound on batch-1 tokens/s is copy bandwidth divided by this.
        /// </summary>
        private static long WeightBytesPerToken(Gpt2Config c) =>
            4 * ((long)c.VocabularySize * c.Width + 3L * c.Width + c.Layers * (12L * c.Width * c.Width + 13L * c.Width));
    }

    /// <summary>Memory copy bandwidth (STREAM convention: bytes read + bytes written per second) of a
    /// buffer far larger than the caches, split over the benchmark's threads; the reference copies a
    /// float tensor of the same size with copy_ on the same threads.</summary>
    private sealed class CopyCase : BenchmarkCase
    {
        public const string NamePrefix = "copy bandwidth";

        private readonly int threads;
        private readonly long bytes;
        private readonly int repeats;
        private readonly byte[] source;
        private readonly byte[] destination;

        public CopyCase(int threads, long bytes, int repeats)
            : base($"{NamePrefix} {bytes >> 20} MiB (read + write)", "GB/s", 2.0 * bytes * repeats / 1e9)
        {
            this.threads = threads;
            this.bytes = bytes;
            this.repeats = repeats;
            source = GC.AllocateUninitializedArray<byte>(checked((int)bytes));
            destination = GC.AllocateUninitializedArray<byte>(checked((int)bytes));
            source.AsSpan().Fill(1);
            destination.AsSpan().Clear(); // touch every page before timing
        }

        public override ReferenceCase Reference => new("copy", new JsonObject { ["bytes"] = bytes, ["repeats"] = repeats });

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken) => Task.Run(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var chunk = (bytes + threads - 1) / threads;
            for (var r = 0; r < repeats; r++)
            {
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = cancellationToken }, i =>
                {
                    var start = i * chunk;
                    var length = (int)Math.Min(chunk, bytes - start);
                    if (length > 0) source.AsSpan((int)start, length).CopyTo(destination.AsSpan((int)start, length));
                });
            }
            return clock.Elapsed.TotalSeconds;
        }, cancellationToken);
    }
}
