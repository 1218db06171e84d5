using PrefOnline.Kernels;

namespace PrefOnline.Kernels.Tests;

/// <summary>Small helpers the kernel tests share.</summary>
internal static class KernelTestSupport
{
    /// <summary>The presets the product ships, and a shape whose width, head size and vocabulary are
    /// off every vector multiple (the kernels' tail paths).</summary>
    public static FusedGpt2Shape ShapeNamed(string name) => name switch
    {
        "tiny" => new FusedGpt2Shape(Layers: 4, Heads: 4, Width: 128, VocabularySize: 258, ContextLength: 256),
        "small" => new FusedGpt2Shape(Layers: 6, Heads: 6, Width: 384, VocabularySize: 258, ContextLength: 256),
        "odd" => new FusedGpt2Shape(Layers: 2, Heads: 3, Width: 60, VocabularySize: 101, ContextLength: 48),
        "toy" => new FusedGpt2Shape(Layers: 1, Heads: 1, Width: 16, VocabularySize: 6, ContextLength: 8),
        _ => throw new ArgumentException($"unknown test shape '{name}'"),
    };

    public static readonly KernelLevel[] AllLevels = [KernelLevel.Avx512, KernelLevel.Avx2, KernelLevel.Baseline];

    public static int[] Sequence(int seed, int length, int vocabulary)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(vocabulary)).ToArray();
    }

    /// <summary>log softmax in double precision (the exact reference for float32 log-probs).</summary>
    public static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        var max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var sum = 0.0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        var lse = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (var i = 0; i < logits.Length; i++) result[i] = logits[i] - lse;
        return result;
    }

    /// <summary>First index of the largest logit (torch.argmax's tie rule).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    /// <summary>Forces a kernel level until disposed, then restores the CPU's best. The level really
    /// in effect (lower when the CPU lacks the requested one) is <see cref="Effective"/>.</summary>
    public sealed class LevelScope : IDisposable
    {
        private readonly KernelLevel previous = FusedKernels.Level;

        public LevelScope(KernelLevel level) => Effective = FusedKernels.SelectLevel(level);

        public KernelLevel Effective { get; }

        public void Dispose() => FusedKernels.SelectLevel(previous);
    }

    /// <summary>Sets the kernels' thread count until disposed.</summary>
    public sealed class ThreadsScope : IDisposable
    {
        private readonly int previous = FusedKernels.Threads;

        public ThreadsScope(int threads) => FusedKernels.Threads = threads;

        public void Dispose() => FusedKernels.Threads = previous;
    }
}
