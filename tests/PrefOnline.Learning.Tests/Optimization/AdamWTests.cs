using System.Text.Json.Nodes;
using PrefOnline.Learning.Optimization;
using PrefOnline.Learning.Tests.Support;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Tensors.Tests;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Optimization;

/// <summary>
/// AdamW (TorchSharp's, through <see cref="AdamWOptimizer"/>) against torch.optim.AdamW (Debian's PyTorch
/// 1.13, run by the test): the same initial values and the same gradients handed to both at every step
/// (so only the optimizer is compared, not libtorch 2.10's and 1.13's autograd kernels, which differ in
/// the last bit), several steps with learning-rate changes and a parameter that never gets a gradient.
/// Both run the same elementwise ops in the same order; libtorch 2.10's vectorized addcmul/addcdiv fuse
/// the multiply-add where 1.13 rounded twice, so results agree to the last bits, not bit for bit: within a
/// few ulp after six steps (measured: 1 ulp). A large eps makes any misplacement of eps glaring.
/// </summary>
public class AdamWTests
{
    private const string TorchScript = """
        dt = torch.float64 if data["dtype"] == "f64" else torch.float32
        W = torch.tensor(data["W"], dtype=dt).reshape(3, 4).requires_grad_()
        b = torch.tensor(data["b"], dtype=dt).requires_grad_()
        u = torch.tensor(data["u"], dtype=dt).requires_grad_()
        o = data["options"]
        opt = torch.optim.AdamW([W, b, u], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["wd"])
        for step, lr in enumerate(data["lrs"]):
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            W.grad = torch.tensor(data["gW"][step], dtype=dt).reshape(3, 4)
            b.grad = torch.tensor(data["gb"][step], dtype=dt)
            opt.step()
        flat = lambda t: t.detach().flatten().tolist()
        print(json.dumps({
            "W": flat(W), "b": flat(b), "u": flat(u),
            "W_exp_avg": flat(opt.state[W]["exp_avg"]), "W_exp_avg_sq": flat(opt.state[W]["exp_avg_sq"]),
            "b_exp_avg": flat(opt.state[b]["exp_avg"]), "b_exp_avg_sq": flat(opt.state[b]["exp_avg_sq"]),
            "W_step": float(opt.state[W]["step"]), "u_has_state": u in opt.state,
        }))
        """;

    private static readonly double[] LearningRates = [0.05, 0.05, 0.02, 0.02, 0.1, 0.03];

    /// <summary>Initial values of W (3×4), b (3) and u (2), and one gradient of W and b per step.</summary>
    private sealed record Problem(double[] W, double[] B, double[] U, double[][] GradW, double[][] GradB);

    private static Problem MakeProblem()
    {
        var rng = new Random(42);
        double[] Draw(int n) => Enumerable.Range(0, n).Select(_ => Math.Round(rng.NextDouble() * 4 - 2, 6)).ToArray();
        return new Problem(Draw(12), Draw(3), Draw(2), LearningRates.Select(_ => Draw(12)).ToArray(), LearningRates.Select(_ => Draw(3)).ToArray());
    }

    private static JsonArray Rows(double[][] rows) => new(rows.Select(r => (JsonNode?)PythonTorch.Array(r)).ToArray());

    /// <summary>The same loop as the Python script, in C#: returns (W, b, u) and the optimiser, all live.</summary>
    private static (Parameter W, Parameter B, Parameter U, AdamWOptimizer Optimizer) RunOurs(Problem p, ScalarType dtype, AdamWOptions options, IEnumerable<double> lrs)
    {
        var w = new Parameter(tensor(p.W, [3, 4]).to(dtype));
        var b = new Parameter(tensor(p.B).to(dtype));
        var u = new Parameter(tensor(p.U).to(dtype));
        var optimizer = new AdamWOptimizer([w, b, u], options);
        Steps(p, dtype, w, b, optimizer, lrs);
        return (w, b, u, optimizer);
    }

    private static void Steps(Problem p, ScalarType dtype, Tensor w, Tensor b, AdamWOptimizer optimizer, IEnumerable<double> lrs, int firstStep = 0)
    {
        var step = firstStep;
        foreach (var lr in lrs)
        {
            using var scope = NewDisposeScope();
            optimizer.LearningRate = lr;
            optimizer.ZeroGrad();
            w.grad = tensor(p.GradW[step], [3, 4]).to(dtype);
            b.grad = tensor(p.GradB[step]).to(dtype);
            step++;
            optimizer.Step();
        }
    }

    private static double[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(ScalarType.Float64).data<double>().ToArray();
    }

    [Theory]
    [InlineData("f64", 1e-8)]
    [InlineData("f64", 1e-3)]  // a large eps: where eps enters the update shows
    [InlineData("f32", 1e-8)]
    public async Task Several_steps_equal_torch_optim_AdamW_to_the_last_bits(string dtypeName, double eps)
    {
        var dtype = dtypeName == "f64" ? ScalarType.Float64 : ScalarType.Float32;
        var p = MakeProblem();
        var options = new AdamWOptions { LearningRate = 0.05, Beta1 = 0.85, Beta2 = 0.99, Eps = eps, WeightDecay = 0.1 };
        var expected = await PythonTorch.RunAsync(TorchScript, new JsonObject
        {
            ["dtype"] = dtypeName,
            ["W"] = PythonTorch.Array(p.W), ["b"] = PythonTorch.Array(p.B), ["u"] = PythonTorch.Array(p.U),
            ["gW"] = Rows(p.GradW), ["gb"] = Rows(p.GradB),
            ["options"] = new JsonObject { ["lr"] = 0.05, ["beta1"] = 0.85, ["beta2"] = 0.99, ["eps"] = eps, ["wd"] = 0.1 },
            ["lrs"] = PythonTorch.Array(LearningRates),
        });

        var tolerance = dtype == ScalarType.Float32 ? 1e-6 : 1e-14;  // relative: ~8 ulp of float32, ~45 of float64
        var (w, b, u, optimizer) = RunOurs(p, dtype, options, LearningRates);
        using (optimizer)
        using (w)
        using (b)
        using (u)
        using (var scope = NewDisposeScope())
        {
            AssertClose("W", PythonTorch.Doubles(expected["W"]), Values(w), tolerance);
            AssertClose("b", PythonTorch.Doubles(expected["b"]), Values(b), tolerance);
            // u never had a gradient: torch neither decays nor steps it, and keeps no state for it.
            Assert.False(expected["u_has_state"]!.GetValue<bool>());
            Assert.Equal(p.U.Select(v => dtype == ScalarType.Float32 ? (double)(float)v : v), Values(u));
            Assert.Equal(0, optimizer.StepCount(2));

            var state = optimizer.StateDict();
            AssertClose("W exp_avg", PythonTorch.Doubles(expected["W_exp_avg"]), Values(state["0.exp_avg"]), tolerance);
            AssertClose("W exp_avg_sq", PythonTorch.Doubles(expected["W_exp_avg_sq"]), Values(state["0.exp_avg_sq"]), tolerance);
            AssertClose("b exp_avg", PythonTorch.Doubles(expected["b_exp_avg"]), Values(state["1.exp_avg"]), tolerance);
            AssertClose("b exp_avg_sq", PythonTorch.Doubles(expected["b_exp_avg_sq"]), Values(state["1.exp_avg_sq"]), tolerance);
            Assert.Equal((long)expected["W_step"]!.GetValue<double>(), state["0.step"].ToInt64());
            Assert.Equal(LearningRates.Length, state["0.step"].ToInt64());
            Assert.Empty(state["0.step"].shape);  // a scalar, like torch's state['step']
        }
    }

    private static void AssertClose(string what, double[] expected, double[] actual, double relativeTolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            var allowed = relativeTolerance * Math.Max(1e-3, Math.Abs(expected[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= allowed,
                $"{what}[{i}]: torch {expected[i]:R}, ours {actual[i]:R} (difference {Math.Abs(expected[i] - actual[i]):E2}, allowed {allowed:E2})");
        }
    }

    [Fact]
    public void State_saved_to_safetensors_and_loaded_continues_bit_for_bit()
    {
        var p = MakeProblem();
        var options = new AdamWOptions { LearningRate = 0.05, Beta1 = 0.8, Beta2 = 0.95, WeightDecay = 0.05 };
        var dir = Directory.CreateTempSubdirectory("prefonline-adamw-");
        try
        {
            // One run of 6 steps without interruption.
            var (w1, b1, u1, straight) = RunOurs(p, ScalarType.Float32, options, LearningRates);
            // A run of 3 steps, state and weights saved, a fresh optimiser restored, 3 more steps.
            var (w2, b2, u2, first) = RunOurs(p, ScalarType.Float32, options, LearningRates.Take(3));
            var file = Path.Combine(dir.FullName, "optimizer.safetensors");
            using (var scope = NewDisposeScope())
                SafeTensorsFile.Write(file, first.StateDict());
            first.Dispose();
            using var resumed = new AdamWOptimizer([w2, b2, u2], options);
            using (var content = SafeTensorsFile.Read(file))
                resumed.LoadStateDict(content.Tensors);
            Assert.Equal(3, resumed.StepCount(0));
            Steps(p, ScalarType.Float32, w2, b2, resumed, LearningRates.Skip(3), firstStep: 3);

            Assert.Equal(w1.data<float>().ToArray(), w2.data<float>().ToArray());
            Assert.Equal(b1.data<float>().ToArray(), b2.data<float>().ToArray());
            using (var scope = NewDisposeScope())
            {
                var s1 = straight.StateDict();
                var s2 = resumed.StateDict();
                Assert.Equal(s1.Keys.Order(), s2.Keys.Order());
                foreach (var key in s1.Keys)
                    Assert.Equal(Values(s1[key]), Values(s2[key]));
            }
            straight.Dispose();
            foreach (var t in new[] { w1, b1, u1, w2, b2, u2 }) t.Dispose();
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Loading_a_wrong_state_reports_every_problem_and_changes_nothing()
    {
        using var scope = NewDisposeScope();
        var w = new Parameter(zeros([2, 2]));
        var b = new Parameter(zeros([2]));
        using var optimizer = new AdamWOptimizer([w, b], new AdamWOptions());
        (w.sum() + b.sum() * 2).backward();
        optimizer.Step();
        var before = optimizer.StateDict().ToDictionary(kv => kv.Key, kv => Values(kv.Value));

        var bad = new Dictionary<string, Tensor>
        {
            ["0.exp_avg"] = ones([3, 2]),          // wrong shape
            ["0.exp_avg_sq"] = ones([2, 2]),
            ["0.step"] = tensor(-4L),                       // negative
            ["1.exp_avg"] = ones([2]),
            // 1.exp_avg_sq missing
            ["1.step"] = tensor(1.5),                        // not an integer
            ["2.exp_avg"] = ones([2]),             // a third parameter that does not exist
        };
        var e = Assert.Throws<InvalidDataException>(() => optimizer.LoadStateDict(bad));
        Assert.Contains("'0.exp_avg' has shape [3, 2], parameter 0 has [2, 2]", e.Message);
        Assert.Contains("'0.step' is negative (-4)", e.Message);
        Assert.Contains("'1.exp_avg_sq' is missing", e.Message);
        Assert.Contains("'1.step' must be one integer", e.Message);
        Assert.Contains("unexpected entries", e.Message);
        Assert.Contains("2.exp_avg", e.Message);

        var after = optimizer.StateDict().ToDictionary(kv => kv.Key, kv => Values(kv.Value));
        foreach (var key in before.Keys) Assert.Equal(before[key], after[key]);
        Assert.Equal(1, optimizer.StepCount(0));
    }

    [Fact]
    public void Options_and_parameter_lists_are_validated()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(zeros([2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWOptimizer([p], new AdamWOptions { LearningRate = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWOptimizer([p], new AdamWOptions { Beta1 = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWOptimizer([p], new AdamWOptions { Eps = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWOptimizer([p], new AdamWOptions { WeightDecay = double.NaN }));
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => new AdamWOptimizer([p, p], new AdamWOptions())).Message);
        Assert.Contains("floating-point", Assert.Throws<ArgumentException>(() => new AdamWOptimizer([new Parameter(zeros([2], ScalarType.Int64), requires_grad: false)], new AdamWOptions())).Message);
        using var ok = new AdamWOptimizer([p], new AdamWOptions());
        Assert.Throws<ArgumentOutOfRangeException>(() => ok.LearningRate = double.PositiveInfinity);
        ok.LearningRate = 0;  // warm-up schedules start at zero
    }
}

/// <summary>Counts live tensors, so it runs alone (see <see cref="SerialCollection"/>).</summary>
[Collection(SerialCollection.Name)]
public class AdamWLifetime
{
    [Fact]
    public void Optimizer_state_lives_outside_scopes_and_is_freed_on_dispose()
    {
        var p = new Parameter(zeros([4, 4]));
        var baseline = LiveTensors.Count;
        AdamWOptimizer optimizer;
        using (var scope = NewDisposeScope())
        {
            optimizer = new AdamWOptimizer([p], new AdamWOptions());
            Assert.Equal(0, scope.DisposablesCount);  // nothing of the optimizer's own state is in the caller's scope
        }
        Assert.True(LiveTensors.Count > baseline);    // its moments
        using (var scope = NewDisposeScope())
        {
            p.sum().backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        using (var scope = NewDisposeScope())
            Assert.NotEqual(0.0, p.sum().ToDouble());
        optimizer.Dispose();
        Assert.Equal(baseline, LiveTensors.Count);
        p.Dispose();
    }
}
