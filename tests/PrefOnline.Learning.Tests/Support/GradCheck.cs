using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Support;

/// <summary>
/// Gradient check in float64: the gradient TorchSharp's autograd computes (backward) against central
/// finite differences of the same function. The output is reduced to a scalar with fixed random
/// weights, L = Σ f(x)·w, so every output element's derivative is checked, not just their sum.
/// </summary>
internal static class GradCheck
{
    public const double Eps = 1e-6;
    public const double AbsoluteTolerance = 1e-6;
    public const double RelativeTolerance = 1e-5;

    /// <summary>A float64 input: values (row-major) and shape.</summary>
    public sealed record Input(double[] Values, long[] Dimensions)
    {
        public static Input Of(long[] shape, params double[] values) => new(values, shape);

        /// <summary>Seeded values in [low, high).</summary>
        public static Input Random(int seed, long[] shape, double low = -2, double high = 2)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var rng = new Random(seed);
            return new Input(Enumerable.Range(0, (int)n).Select(_ => low + (high - low) * rng.NextDouble()).ToArray(), shape);
        }
    }

    /// <summary>
    /// Fails with the function's name, input, element and both values when analytic and numeric gradients
    /// differ. <paramref name="function"/> gets fresh float64 tensors (requires_grad on the analytic
    /// pass) and must return a float64 tensor; constants (indices, masks) it creates itself.
    /// </summary>
    public static void Check(string name, Func<Tensor[], Tensor> function, params Input[] inputs) =>
        Check(name, function, AbsoluteTolerance, RelativeTolerance, inputs);

    public static void Check(string name, Func<Tensor[], Tensor> function, double atol, double rtol, params Input[] inputs)
    {
        using var scope = NewDisposeScope();

        // Analytic: autograd.
        var xs = inputs.Select(i => tensor(i.Values, i.Dimensions).requires_grad_()).ToArray();
        var y = function(xs);
        if (y.dtype != ScalarType.Float64) throw new XunitException($"{name}: output is {y.dtype}, the check needs float64");
        var outputShape = y.shape;
        var weights = Weights(y.numel());
        var loss = (y * tensor(weights, outputShape)).sum();
        if (!loss.requires_grad) throw new XunitException($"{name}: the output does not require grad, so the function is not differentiable here");
        loss.backward();
        var analytic = xs.Select((x, i) => x.grad is { } g ? Doubles(g) : new double[inputs[i].Values.Length]).ToArray();

        // Numeric: central differences, without autograd.
        using var noGrad = no_grad();
        for (var i = 0; i < inputs.Length; i++)
        {
            for (var j = 0; j < inputs[i].Values.Length; j++)
            {
                var plus = Evaluate(function, inputs, i, j, +Eps, weights, outputShape, name);
                var minus = Evaluate(function, inputs, i, j, -Eps, weights, outputShape, name);
                var numeric = (plus - minus) / (2 * Eps);
                var a = analytic[i][j];
                if (!(Math.Abs(a - numeric) <= atol + rtol * Math.Abs(numeric)))
                    throw new XunitException(
                        $"{name}: gradient of input {i} element {j} (value {inputs[i].Values[j]}) is {a:R} by autograd but {numeric:R} by finite differences");
            }
        }
    }

    /// <summary>Every element as a double, row-major (any rank, 0 included).</summary>
    public static double[] Doubles(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.numel() == 0 ? [] : t.detach().to(ScalarType.Float64).contiguous().flatten().data<double>().ToArray();
    }

    private static double Evaluate(Func<Tensor[], Tensor> function, Input[] inputs, int input, int element, double delta, double[] weights, long[] shape, string name)
    {
        using var scope = NewDisposeScope();
        var xs = inputs.Select((x, k) =>
        {
            var values = (double[])x.Values.Clone();
            if (k == input) values[element] += delta;
            return tensor(values, x.Dimensions);
        }).ToArray();
        var y = function(xs);
        if (!y.shape.SequenceEqual(shape)) throw new XunitException($"{name}: output shape changed between evaluations");
        var values = Doubles(y);
        var sum = 0.0;
        for (var k = 0; k < values.Length; k++) sum += values[k] * weights[k];
        return sum;
    }

    private static double[] Weights(long count)
    {
        var rng = new Random(20240611);
        return Enumerable.Range(0, (int)count).Select(_ => 0.5 + rng.NextDouble()).ToArray();
    }
}
