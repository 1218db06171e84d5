using Xunit.Sdk;

namespace PrefOnline.Torch.Tests.Helpers;

/// <summary>
/// Gradient check in float64: the gradient autograd computes (Backward) against central finite
/// differences of the same function. The output is reduced to a scalar with fixed random weights,
/// L = Σ f(x)·w, so every output element's derivative is checked, not just their sum.
/// </summary>
internal static class GradCheck
{
    public const double Eps = 1e-6;
    public const double AbsoluteTolerance = 1e-6;
    public const double RelativeTolerance = 1e-5;

    /// <summary>A float64 input: values (row-major) and shape.</summary>
    public sealed record Input(double[] Values, long[] Shape)
    {
        public static Input Of(long[] shape, params double[] values) => new(values, shape);

        /// <summary>Seeded values in [low, high), spread so that no two are closer than the gradcheck step matters.</summary>
        public static Input Random(int seed, long[] shape, double low = -2, double high = 2)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var rng = new Random(seed);
            return new Input(Enumerable.Range(0, (int)n).Select(_ => low + (high - low) * rng.NextDouble()).ToArray(), shape);
        }
    }

    /// <summary>
    /// Fails with the op name, input, element and both values when analytic and numeric gradients
    /// differ. <paramref name="function"/> gets fresh float64 tensors (requires_grad on the analytic
    /// pass) and must return a float64 tensor; constants (indices, masks) it creates itself.
    /// </summary>
    public static void Check(string name, Func<Tensor[], Tensor> function, params Input[] inputs) =>
        Check(name, function, AbsoluteTolerance, RelativeTolerance, inputs);

    public static void Check(string name, Func<Tensor[], Tensor> function, double atol, double rtol, params Input[] inputs)
    {
        using var scope = DisposeScope.Enter();

        // Analytic: autograd.
        var xs = inputs.Select(i => Tensor.FromSpan<double>(i.Values, i.Shape)).ToArray();
        foreach (var x in xs) x.RequiresGrad = true;
        var y = function(xs);
        if (y.Dtype != ScalarType.Float64) throw new XunitException($"{name}: output is {y.Dtype}, the check needs float64");
        var outputShape = y.Shape;
        var weights = Weights(y.NumberOfElements);
        var loss = (y * Tensor.FromSpan<double>(weights, outputShape)).Sum();
        if (!loss.RequiresGrad) throw new XunitException($"{name}: the output does not require grad, so the op is not differentiable here");
        loss.Backward();
        var analytic = xs.Select((x, i) => x.Grad?.ToArray<double>() ?? new double[inputs[i].Values.Length]).ToArray();

        // Numeric: central differences, without autograd.
        using var noGrad = NoGradScope.Enter();
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

    private static double Evaluate(Func<Tensor[], Tensor> function, Input[] inputs, int input, int element, double delta, double[] weights, long[] shape, string name)
    {
        using var scope = DisposeScope.Enter();
        var xs = inputs.Select((x, k) =>
        {
            var values = (double[])x.Values.Clone();
            if (k == input) values[element] += delta;
            return Tensor.FromSpan<double>(values, x.Shape);
        }).ToArray();
        var y = function(xs);
        if (!y.Shape.SequenceEqual(shape)) throw new XunitException($"{name}: output shape changed between evaluations");
        var values = y.ToArray<double>();
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
