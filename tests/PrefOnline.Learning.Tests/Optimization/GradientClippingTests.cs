using System.Text.Json.Nodes;
using PrefOnline.Learning.Optimization;
using PrefOnline.Tensors.Tests;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Optimization;

/// <summary>GradientClipping.ClipGradNorm against torch.nn.utils.clip_grad_norm_ on the same gradients.</summary>
public class GradientClippingTests
{
    private const string TorchScript = """
        dt = torch.float64 if data["dtype"] == "f64" else torch.float32
        params = []
        for shape, grad in zip(data["shapes"], data["grads"]):
            p = torch.zeros(shape, dtype=dt, requires_grad=True)
            if grad is not None:
                p.grad = torch.tensor(grad, dtype=dt).reshape(shape)
            params.append(p)
        norm = torch.nn.utils.clip_grad_norm_(params, data["max_norm"])
        print(json.dumps({"norm": float(norm), "grads": [None if p.grad is None else p.grad.flatten().tolist() for p in params]}))
        """;

    private static readonly long[][] Shapes = [[3, 4], [4], [2, 2]];

    [Theory]
    [InlineData("f64", 0.5)]    // clips hard
    [InlineData("f64", 1e3)]    // no clipping: gradients unchanged
    [InlineData("f32", 0.5)]
    [InlineData("f32", 4.0)]
    public async Task Clipping_equals_torch_clip_grad_norm(string dtypeName, double maxNorm)
    {
        var dtype = dtypeName == "f64" ? ScalarType.Float64 : ScalarType.Float32;
        var rng = new Random(7);
        // The third parameter has no gradient: torch ignores it, so must we.
        double[]?[] grads = [.. Shapes.Take(2).Select(s => Enumerable.Range(0, (int)s.Aggregate(1L, (a, b) => a * b)).Select(_ => rng.NextDouble() * 4 - 2).ToArray()), null];

        var expected = await PythonTorch.RunAsync(TorchScript, new JsonObject
        {
            ["dtype"] = dtypeName,
            ["max_norm"] = maxNorm,
            ["shapes"] = new JsonArray(Shapes.Select(s => (JsonNode?)PythonTorch.Array(s)).ToArray()),
            ["grads"] = new JsonArray(grads.Select(g => g is null ? null : (JsonNode?)PythonTorch.Array(g)).ToArray()),
        });

        using var scope = NewDisposeScope();
        var parameters = Shapes.Select(s => new Parameter(zeros(s, dtype))).ToArray();
        for (var i = 0; i < parameters.Length; i++)
        {
            if (grads[i] is { } g)
            {
                // Gradient g exactly: d/dp Σ p·g = g.
                (parameters[i] * tensor(g, Shapes[i]).to(dtype)).sum().backward();
            }
        }

        var norm = GradientClipping.ClipGradNorm(parameters, maxNorm);

        // The same ops in the same order as PyTorch; libtorch 2.10's norm reductions may round the last bit
        // differently from 1.13's (measured: 1 ulp), so relative few-ulp tolerances.
        var tolerance = dtype == ScalarType.Float32 ? 1e-6 : 1e-14;
        var expectedNorm = expected["norm"]!.GetValue<double>();
        Assert.True(Math.Abs(norm - expectedNorm) <= tolerance * expectedNorm, $"norm: torch {expectedNorm:R}, ours {norm:R}");
        for (var i = 0; i < parameters.Length; i++)
        {
            var expectedGrad = expected["grads"]![i];
            var grad = parameters[i].grad;
            if (expectedGrad is null)
            {
                Assert.Null(grad);
                continue;
            }
            var want = PythonTorch.Doubles(expectedGrad);
            var got = grad!.to(ScalarType.Float64).data<double>().ToArray();
            for (var k = 0; k < want.Length; k++)
                Assert.True(Math.Abs(want[k] - got[k]) <= tolerance * Math.Max(1, Math.Abs(want[k])), $"grad {i}[{k}]: torch {want[k]:R}, ours {got[k]:R}");
        }
        if (maxNorm >= norm + 1e-6)
        {
            // Coefficient clamped to 1: the gradients are exactly what they were.
            var original = grads[0]!.Select(v => dtype == ScalarType.Float32 ? (double)(float)v : v).ToArray();
            Assert.Equal(original, parameters[0].grad!.to(ScalarType.Float64).data<double>().ToArray());
        }
        else
        {
            Assert.True(norm > maxNorm, "this case was meant to clip");
        }
    }

    [Fact]
    public void Non_finite_norm_is_reported_and_gradients_are_left_alone()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(zeros([3]));
        (p * tensor(new[] { 1f, float.PositiveInfinity, 2f })).sum().backward();
        var norm = GradientClipping.ClipGradNorm([p], 1.0);
        Assert.True(double.IsPositiveInfinity(norm));
        Assert.Equal(new[] { 1f, float.PositiveInfinity, 2f }, p.grad!.data<float>().ToArray());
    }

    [Fact]
    public void No_gradients_give_norm_zero_and_bad_max_norm_is_refused()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(zeros([3]));
        Assert.Equal(0.0, GradientClipping.ClipGradNorm([p], 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([p], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipGradNorm([p], double.NaN));
    }
}
