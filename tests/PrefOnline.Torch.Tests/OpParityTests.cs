using System.Text.Json.Nodes;
using PrefOnline.Torch.Tests.Helpers;

namespace PrefOnline.Torch.Tests;

/// <summary>
/// Forward values of the op surface against PyTorch on the same float64 inputs: the gradient checks
/// prove gradients agree with the forward function, this proves the forward function is the one its
/// name says (softmax is softmax, rsub is s − a, gelu's approximation is the tanh one, ...). One
/// Python call evaluates every expression.
/// </summary>
public class OpParityTests
{
    private sealed record Inputs(Tensor A, Tensor B, Tensor P, Tensor M, Tensor Bias, Tensor Logits);

    private static Tensor L(long[] v, params long[] shape) => Tensor.FromSpan<long>(v, shape);

    private static Tensor Bo(bool[] v, params long[] shape) => Tensor.FromSpan<bool>(v, shape);

    /// <summary>name → (our computation, the same in PyTorch with a, b, p, m, bias, logits, F, torch in scope).</summary>
    private static readonly (string Name, Func<Inputs, Tensor> Ours, string Torch)[] Cases =
    [
        ("add", x => x.A + x.B, "a + b"),
        ("add broadcast", x => x.A + x.Bias, "a + bias"),
        ("sub", x => x.A - x.B, "a - b"),
        ("mul", x => x.A * x.B, "a * b"),
        ("div", x => x.A / x.P, "a / p"),
        ("add scalar", x => x.A.Add(1.5), "a + 1.5"),
        ("sub scalar", x => x.A.Sub(1.5), "a - 1.5"),
        ("rsub scalar", x => 2.0 - x.A, "2.0 - a"),
        ("mul scalar", x => x.A * 3.0, "a * 3.0"),
        ("div scalar", x => x.A / 4.0, "a / 4.0"),
        ("rdiv scalar", x => 2.0 / x.P, "2.0 / p"),
        ("pow scalar", x => x.P.Pow(1.5), "p ** 1.5"),
        ("pow tensor", x => x.P.Pow(x.A), "p ** a"),
        ("matmul batched", x => x.A.Matmul(x.M), "a @ m"),
        ("addmm", x => x.Bias.Slice(0, 0, 3).AddMm(x.A[0].Transpose(0, 1), x.A[1].Slice(1, 0, 3)), "torch.addmm(bias[:3], a[0].T, a[1][:, :3])"),
        ("minimum", x => Tensor.Minimum(x.A, x.B), "torch.minimum(a, b)"),
        ("maximum", x => Tensor.Maximum(x.A, x.B), "torch.maximum(a, b)"),
        ("neg", x => -x.A, "-a"),
        ("exp", x => x.A.Exp(), "a.exp()"),
        ("log", x => x.P.Log(), "p.log()"),
        ("log1p", x => x.P.Log1p(), "p.log1p()"),
        ("sqrt", x => x.P.Sqrt(), "p.sqrt()"),
        ("rsqrt", x => x.P.Rsqrt(), "p.rsqrt()"),
        ("abs", x => x.A.Abs(), "a.abs()"),
        ("sign", x => x.A.Sign(), "a.sign()"),
        ("tanh", x => x.A.Tanh(), "a.tanh()"),
        ("relu", x => x.A.Relu(), "a.relu()"),
        ("sigmoid", x => x.A.Sigmoid(), "a.sigmoid()"),
        ("logsigmoid", x => (x.A * 20.0).LogSigmoid(), "F.logsigmoid(a * 20.0)"),
        ("softplus", x => x.A.Softplus(), "F.softplus(a)"),
        ("gelu tanh", x => x.A.Gelu(), "F.gelu(a, approximate='tanh')"),
        ("gelu exact", x => x.A.Gelu(tanhApproximation: false), "F.gelu(a)"),
        ("softmax", x => x.A.Softmax(-1), "a.softmax(-1)"),
        ("log_softmax", x => x.A.LogSoftmax(1), "a.log_softmax(1)"),
        ("cumsum", x => x.A.Cumsum(2), "a.cumsum(2)"),
        ("clamp", x => x.A.Clamp(-0.5, 0.5), "a.clamp(-0.5, 0.5)"),
        ("clamp min", x => x.A.Clamp(min: 0.1), "a.clamp(min=0.1)"),
        ("clamp max", x => x.A.Clamp(max: 0.1), "a.clamp(max=0.1)"),
        ("sum", x => x.A.Sum(), "a.sum()"),
        ("sum dims keepdim", x => x.A.Sum([0, 2], keepDim: true), "a.sum((0, 2), keepdim=True)"),
        ("mean", x => x.A.Mean(), "a.mean()"),
        ("mean dim", x => x.A.Mean(1), "a.mean(1)"),
        ("max", x => x.A.Max(), "a.max()"),
        ("min", x => x.A.Min(), "a.min()"),
        ("max dim values", x => x.A.Max(1).Values, "a.max(1).values"),
        ("max dim indices", x => x.A.Max(1).Indices, "a.max(1).indices"),
        ("min dim keepdim", x => x.A.Min(2, keepDim: true).Values, "a.min(2, keepdim=True).values"),
        ("argmax", x => x.A.ArgMax(-1), "a.argmax(-1)"),
        ("norm", x => x.A.Norm(), "a.norm()"),
        ("logsumexp", x => x.A.LogSumExp(2), "a.logsumexp(2)"),
        ("logsumexp dims", x => x.A.LogSumExp([0, 1], keepDim: true), "torch.logsumexp(a, (0, 1), keepdim=True)"),
        ("var", x => x.A.Var(1), "a.var(1)"),
        ("var biased", x => x.A.Var(2, unbiased: false, keepDim: true), "a.var(2, unbiased=False, keepdim=True)"),
        ("topk values", x => x.A.TopK(2).Values, "a.topk(2).values"),
        ("topk indices smallest", x => x.A.TopK(2, dim: 1, largest: false).Indices, "a.topk(2, dim=1, largest=False).indices"),
        ("sort", x => x.A.Sort(-1, descending: true).Values, "a.sort(-1, descending=True).values"),
        ("sort indices", x => x.A.Sort(0).Indices, "a.sort(0).indices"),
        ("all", x => x.A.Gt(-10).All(), "(a > -10).all()"),
        ("any", x => x.A.Gt(10).Any(), "(a > 10).any()"),
        ("transpose", x => x.A.Transpose(0, 2), "a.transpose(0, 2)"),
        ("permute", x => x.A.Permute(2, 0, 1), "a.permute(2, 0, 1)"),
        ("reshape", x => x.A.Reshape(4, -1), "a.reshape(4, -1)"),
        ("view", x => x.A.View(6, 4), "a.view(6, 4)"),
        ("flatten", x => x.A.Flatten(1), "a.flatten(1)"),
        ("slice", x => x.A.Slice(2, 1, 4, 2), "a[:, :, 1:4:2]"),
        ("slice negative", x => x.A.Slice(1, -2, 3), "a[:, -2:3]"),
        ("select", x => x.A.Select(1, 2), "a[:, 2]"),
        ("indexer", x => x.A[1], "a[1]"),
        ("unsqueeze", x => x.A.Unsqueeze(-1), "a.unsqueeze(-1)"),
        ("squeeze", x => x.A.Slice(1, 0, 1).Squeeze(1), "a[:, 0:1].squeeze(1)"),
        ("expand", x => x.Bias.Expand(3, 4), "bias.expand(3, 4)"),
        ("repeat", x => x.Bias.Repeat(2, 2), "bias.repeat(2, 2)"),
        ("index_select", x => x.A.IndexSelect(2, L([3, 0, 3], 3)), "a.index_select(2, torch.tensor([3, 0, 3]))"),
        ("gather", x => x.A.Gather(2, L([0, 3, 1, 1, 2, 0], 2, 3, 1)), "a.gather(2, torch.tensor([0, 3, 1, 1, 2, 0]).reshape(2, 3, 1))"),
        ("masked_fill", x => x.A.MaskedFill(x.A.Gt(0), -1e9), "a.masked_fill(a > 0, -1e9)"),
        ("masked_select", x => x.A.MaskedSelect(x.A.Lt(0)), "a[a < 0]"),
        ("triu", x => x.A.Triu(1), "a.triu(1)"),
        ("tril", x => x.A.Tril(-1), "a.tril(-1)"),
        ("causal mask", _ => Functional.CausalMask(4), "torch.ones(4, 4, dtype=torch.bool).triu(1)"),
        ("cat", x => Tensor.Cat([x.A, x.B], 1), "torch.cat([a, b], 1)"),
        ("stack", x => Tensor.Stack([x.A, x.B], -1), "torch.stack([a, b], -1)"),
        ("split", x => x.A.Split(3, 2)[1], "a.split(3, 2)[1]"),
        ("where", x => Tensor.Where(x.A.Gt(x.B), x.A, x.B * 2.0), "torch.where(a > b, a, b * 2.0)"),
        ("eq", x => x.A.Eq(x.A.Clamp(max: 0)), "a == a.clamp(max=0)"),
        ("ne scalar", x => x.A.Ne(0), "a != 0"),
        ("ge", x => x.A.Ge(x.B), "a >= b"),
        ("le scalar", x => x.A.Le(0.25), "a <= 0.25"),
        ("lt", x => x.A.Lt(x.B), "a < b"),
        ("gt scalar", x => x.A.Gt(0.25), "a > 0.25"),
        ("logical and/or/not", x => x.A.Gt(0).LogicalAnd(x.B.Gt(0)).LogicalOr(x.A.Lt(-1)).LogicalNot(), "~(((a > 0) & (b > 0)) | (a < -1))"),
        ("isfinite", x => (x.A / x.A.Clamp(max: 0)).IsFinite(), "(a / a.clamp(max=0)).isfinite()"),
        ("linear", x => Functional.Linear(x.A, x.M.Transpose(0, 1), x.M[0]), "F.linear(a, m.T, m[0])"),
        ("linear no bias", x => Functional.Linear(x.A, x.M.Transpose(0, 1)), "F.linear(a, m.T)"),
        ("layer_norm", x => Functional.LayerNorm(x.A, [4], x.Bias, x.Bias * 0.5), "F.layer_norm(a, (4,), bias, bias * 0.5)"),
        ("layer_norm 2 dims", x => Functional.LayerNorm(x.A, [3, 4], null, null, 1e-3), "F.layer_norm(a, (3, 4), eps=1e-3)"),
        ("embedding", x => Functional.Embedding(x.M, L([3, 0, 3, 1], 2, 2)), "F.embedding(torch.tensor([[3, 0], [3, 1]]), m)"),
        ("cross_entropy", x => Functional.CrossEntropy(x.Logits, L([2, -100, 0], 3), labelSmoothing: 0.1),
            "F.cross_entropy(logits, torch.tensor([2, -100, 0]), ignore_index=-100, label_smoothing=0.1)"),
        ("mse_loss", x => Functional.MseLoss(x.A, x.B), "F.mse_loss(a, b)"),
        ("dropout eval", x => Functional.Dropout(x.A, 0.5, training: false, null), "F.dropout(a, 0.5, training=False)"),
        ("to float32", x => x.A.To(ScalarType.Float32), "a.float()"),
        ("to bfloat16", x => x.A.To(ScalarType.BFloat16), "a.bfloat16()"),
        ("to float16", x => x.A.To(ScalarType.Float16), "a.half()"),
        ("to int64", x => (x.A * 10.0).To(ScalarType.Int64), "(a * 10.0).long()"),
        ("multinomial seeded", _ =>
        {
            using var g = new Generator(5);
            return Tensor.FromArray(new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.1, 0.3 }, 2, 4).Multinomial(5, replacement: true, g);
        }, "torch.multinomial(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.1, 0.3]], dtype=torch.float64), 5, True, generator=torch.Generator().manual_seed(5))"),
        ("randn seeded", _ =>
        {
            using var g = new Generator(6);
            return Tensor.Randn([2, 3], g, ScalarType.Float64);
        }, "torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))"),
        ("arange", _ => Tensor.Arange(2, 11, 3), "torch.arange(2, 11, 3)"),
        ("full", _ => Tensor.Full([2, 2], 0.25, ScalarType.Float64), "torch.full((2, 2), 0.25, dtype=torch.float64)"),
    ];

    private const string Script = """
        import torch.nn.functional as F
        dt = torch.float64
        t = lambda name: torch.tensor(data["inputs"][name]["values"], dtype=dt).reshape(data["inputs"][name]["shape"])
        ns = {"a": t("a"), "b": t("b"), "p": t("p"), "m": t("m"), "bias": t("bias"), "logits": t("logits"), "F": F, "torch": torch}
        out = {}
        for name, expr in data["cases"].items():
            r = eval(expr, ns)
            out[name] = {"shape": list(r.shape), "dtype": str(r.dtype), "values": r.double().flatten().tolist()}
        print(json.dumps(out))
        """;

    [Fact]
    public async Task Forward_values_equal_pytorch()
    {
        var rng = new Random(99);
        double[] Draw(int n, double lo = -2, double hi = 2) => Enumerable.Range(0, n).Select(_ => lo + (hi - lo) * rng.NextDouble()).ToArray();
        var raw = new Dictionary<string, (double[] Values, long[] Shape)>
        {
            ["a"] = (Draw(24), [2, 3, 4]),
            ["b"] = (Draw(24), [2, 3, 4]),
            ["p"] = (Draw(24, 0.5, 2.5), [2, 3, 4]),
            ["m"] = (Draw(20), [4, 5]),
            ["bias"] = (Draw(4), [4]),
            ["logits"] = (Draw(12), [3, 4]),
        };

        var expected = await PythonTorch.RunAsync(Script, new JsonObject
        {
            ["inputs"] = new JsonObject(raw.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
            {
                ["values"] = PythonTorch.Array(kv.Value.Values), ["shape"] = PythonTorch.Array(kv.Value.Shape),
            }))),
            ["cases"] = new JsonObject(Cases.Select(c => KeyValuePair.Create(c.Name, (JsonNode?)JsonValue.Create(c.Torch)))),
        });

        using var scope = DisposeScope.Enter();
        Tensor In(string name) => Tensor.FromSpan<double>(raw[name].Values, raw[name].Shape);
        var inputs = new Inputs(In("a"), In("b"), In("p"), In("m"), In("bias"), In("logits"));
        var failures = new List<string>();
        foreach (var (name, ours, torch) in Cases)
        {
            var result = ours(inputs);
            var want = expected[name]!;
            var shape = want["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            if (!shape.SequenceEqual(result.Shape))
            {
                failures.Add($"{name}: shape [{string.Join(", ", result.Shape)}], torch [{string.Join(", ", shape)}]");
                continue;
            }
            var torchDtype = want["dtype"]!.GetValue<string>();
            if (torchDtype != TorchName(result.Dtype)) failures.Add($"{name}: dtype {result.Dtype}, torch {torchDtype}");
            var got = result.To(ScalarType.Float64).ToArray<double>();
            var values = PythonTorch.Doubles(want["values"]);
            for (var i = 0; i < values.Length; i++)
            {
                if (!(Math.Abs(values[i] - got[i]) <= 1e-12 * Math.Max(1, Math.Abs(values[i]))) && !(double.IsNaN(values[i]) && double.IsNaN(got[i])))
                {
                    failures.Add($"{name} ({torch}): element {i} is {got[i]:R}, torch {values[i]:R}");
                    break;
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string TorchName(ScalarType t) => t switch
    {
        ScalarType.Float64 => "torch.float64",
        ScalarType.Float32 => "torch.float32",
        ScalarType.Float16 => "torch.float16",
        ScalarType.BFloat16 => "torch.bfloat16",
        ScalarType.Int64 => "torch.int64",
        ScalarType.Bool => "torch.bool",
        _ => t.ToString(),
    };
}
