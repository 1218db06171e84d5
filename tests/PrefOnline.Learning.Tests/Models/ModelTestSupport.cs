using PrefOnline.Learning.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Models;

internal static class ModelTestSupport
{
    /// <summary>A small shape for fast tests: 2 layers, 4 heads, width 32, context 64, byte vocabulary.</summary>
    public static Gpt2Config Micro(double dropout = 0) => new() { VocabularySize = 258, ContextLength = 64, Layers = 2, Heads = 4, Width = 32, Dropout = dropout };

    public static Tensor Tokens(int[][] rows)
    {
        var t = rows[0].Length;
        var flat = new long[rows.Length * t];
        for (var i = 0; i < rows.Length; i++)
        {
            if (rows[i].Length != t) throw new ArgumentException("rows must have one length");
            for (var j = 0; j < t; j++) flat[i * t + j] = rows[i][j];
        }
        return tensor(flat, [rows.Length, t]);
    }

    public static int[] RandomTokens(Random random, int length, int vocabulary = 256) =>
        Enumerable.Range(0, length).Select(_ => random.Next(vocabulary)).ToArray();

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (var i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>Greedy decoding by repeated full forward passes (the slow, obviously right way).</summary>
    public static int[] Greedy(PolicyModel model, int[] prompt, int steps)
    {
        var sequence = prompt.ToList();
        using var noGrad = no_grad();
        for (var s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var window = sequence.Skip(Math.Max(0, sequence.Count - model.Config.ContextLength)).ToArray();
            var logits = model.Forward(Tokens([window]));                   // (1, T, V)
            sequence.Add((int)logits.select(1, window.Length - 1).argmax(-1).ToInt64());
        }
        return sequence.Skip(prompt.Length).ToArray();
    }

    /// <summary>Same shape and bitwise the same values.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().ToBoolean();
    }

    public static string TempDirectory(string name)
    {
        var path = Path.Combine(Path.GetTempPath(), "prefonline-tests", $"{name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
