using System.Reflection;
using PrefOnline.Torch.Tests.Helpers;
using static PrefOnline.Torch.Tests.Helpers.GradCheck;

namespace PrefOnline.Torch.Tests;

/// <summary>
/// Every differentiable op the bridge exposes, checked in float64: autograd's gradient against
/// central finite differences. Inputs avoid the kinks of non-smooth ops (|x| at 0, relu at 0, ties in
/// max/sort, clamp bounds). <see cref="Every_differentiable_op_has_a_gradient_check"/> fails when an op
/// is added to Tensor or Functional without a case here (or a reason it is not differentiable).
/// </summary>
public class GradientCheckTests
{
    private static readonly long[] S23 = [2, 3];

    private static Input R(int seed, params long[] shape) => Input.Random(seed, shape);

    private static Input Positive(int seed, params long[] shape) => Input.Random(seed, shape, 0.5, 2.5);

    private static Tensor Longs(long[] values, params long[] shape) => Tensor.FromSpan<long>(values, shape);

    private static Tensor Bools(bool[] values, params long[] shape) => Tensor.FromSpan<bool>(values, shape);

    /// <summary>Case name → (API members it covers, the check).</summary>
    private static readonly Dictionary<string, (string[] Covers, Action Run)> Cases = new()
    {
        // ---- shape and indexing
        ["reshape"] = (["Reshape"], () => Check("reshape", x => x[0].Reshape(3, 2), R(1, 2, 3))),
        ["view"] = (["View"], () => Check("view", x => x[0].View(6), R(2, 2, 3))),
        ["permute"] = (["Permute"], () => Check("permute", x => x[0].Permute(2, 0, 1), R(3, 2, 3, 2))),
        ["expand"] = (["Expand"], () => Check("expand", x => x[0].Expand(4, 3), R(4, 1, 3))),
        ["repeat"] = (["Repeat"], () => Check("repeat", x => x[0].Repeat(2, 2), R(5, 2, 3))),
        ["transpose"] = (["Transpose"], () => Check("transpose", x => x[0].Transpose(0, 1), R(6, 2, 3))),
        ["slice"] = (["Slice"], () => Check("slice", x => x[0].Slice(1, 1, 4, 2), R(7, 2, 5))),
        ["select"] = (["Select"], () => Check("select", x => x[0].Select(1, 2), R(8, 2, 3))),
        ["indexer"] = (["get_Item"], () => Check("a[i]", x => x[0][1], R(9, 2, 3))),
        ["unsqueeze"] = (["Unsqueeze"], () => Check("unsqueeze", x => x[0].Unsqueeze(1), R(10, 2, 3))),
        ["squeeze"] = (["Squeeze"], () => Check("squeeze", x => x[0].Squeeze(1), R(11, 2, 1, 3))),
        ["flatten"] = (["Flatten"], () => Check("flatten", x => x[0].Flatten(1), R(12, 2, 2, 3))),
        ["index_select"] = (["IndexSelect"], () => Check("index_select", x => x[0].IndexSelect(1, Longs([2, 0, 2], 3)), R(13, 2, 3))),
        ["gather"] = (["Gather"], () => Check("gather", x => x[0].Gather(1, Longs([0, 2, 1, 1], 2, 2)), R(14, 2, 3))),
        ["masked_fill"] = (["MaskedFill"], () => Check("masked_fill",
            x => x[0].MaskedFill(Bools([true, false, false, false, true, false], 2, 3), -7.5), R(15, 2, 3))),
        ["masked_fill_broadcast"] = (["MaskedFill"], () => Check("masked_fill (broadcast mask)",
            x => x[0].MaskedFill(Bools([false, true, false], 3), 0), R(16, 2, 3))),
        ["masked_select"] = (["MaskedSelect"], () => Check("masked_select",
            x => x[0].MaskedSelect(Bools([true, false, true, true, false, true], 2, 3)), R(17, 2, 3))),
        ["triu"] = (["Triu"], () => Check("triu", x => x[0].Triu(1), R(18, 3, 3))),
        ["tril"] = (["Tril"], () => Check("tril", x => x[0].Tril(), R(19, 3, 3))),
        ["cat"] = (["Cat"], () => Check("cat", x => Tensor.Cat([x[0], x[1]], 1), R(20, 2, 3), R(21, 2, 2))),
        ["stack"] = (["Stack"], () => Check("stack", x => Tensor.Stack([x[0], x[1]], 1), R(22, 2, 3), R(23, 2, 3))),
        ["split"] = (["Split"], () => Check("split", x =>
        {
            var parts = x[0].Split(2, 1);  // widths 2, 2, 1
            return Tensor.Cat([parts[2] * 3.0, parts[0], parts[1] * -2.0], 1);
        }, R(24, 2, 5))),
        ["where"] = (["Where"], () => Check("where",
            x => Tensor.Where(Bools([true, false, true], 3), x[0], x[1]), R(25, 2, 3), R(26, 2, 3))),

        // ---- arithmetic, with broadcasting
        ["add"] = (["Add", "op_Addition"], () => Check("add (broadcast)", x => x[0] + x[1], R(30, 2, 3), R(31, 3))),
        ["sub"] = (["Sub", "op_Subtraction"], () => Check("sub (broadcast)", x => x[0] - x[1], R(32, 2, 1), R(33, 1, 3))),
        ["mul"] = (["Mul", "op_Multiply"], () => Check("mul (broadcast)", x => x[0] * x[1], R(34, 2, 3), R(35, 2, 1))),
        ["div"] = (["Div", "op_Division"], () => Check("div (broadcast)", x => x[0] / x[1], R(36, 2, 3), Positive(37, 3))),
        ["add_scalar"] = (["Add", "op_Addition"], () => Check("add scalar", x => x[0].Add(1.5) + (2.0 + x[0]), R(38, 2, 3))),
        ["sub_scalar"] = (["Sub", "op_Subtraction"], () => Check("sub scalar", x => x[0].Sub(1.5) * (x[0] - 0.5) + (3.0 - x[0]), R(39, 2, 3))),
        ["mul_scalar"] = (["Mul", "op_Multiply"], () => Check("mul scalar", x => x[0].Mul(-1.5) + 2.0 * x[0] * 0.25, R(40, 2, 3))),
        ["div_scalar"] = (["Div", "op_Division"], () => Check("div scalar", x => x[0].Div(4.0) + x[0] / 3.0 + 2.0 / x[0], Positive(41, 2, 3))),
        ["neg"] = (["Neg", "op_UnaryNegation"], () => Check("neg", x => x[0].Neg() * (-x[0]), R(42, 2, 3))),
        ["pow_scalar"] = (["Pow"], () => Check("pow scalar", x => x[0].Pow(2.5), Positive(43, 2, 3))),
        ["pow_tensor"] = (["Pow"], () => Check("pow tensor", x => x[0].Pow(x[1]), Positive(44, 2, 3), R(45, 2, 3))),
        ["matmul"] = (["Matmul"], () => Check("matmul", x => x[0].Matmul(x[1]), R(46, 2, 3), R(47, 3, 4))),
        ["matmul_batched"] = (["Matmul"], () => Check("matmul batched, broadcast", x => x[0].Matmul(x[1]), R(48, 2, 2, 3), R(49, 3, 2))),
        ["matmul_vector"] = (["Matmul"], () => Check("matmul matrix-vector", x => x[0].Matmul(x[1]), R(50, 2, 3), R(51, 3))),
        ["addmm"] = (["AddMm"], () => Check("addmm", x => x[0].AddMm(x[1], x[2]), R(52, 4), R(53, 2, 3), R(54, 3, 4))),
        ["bmm"] = (["Bmm"], () => Check("bmm", x => x[0].Bmm(x[1]), R(160, 2, 2, 3), R(161, 2, 3, 4))),
        ["baddbmm"] = (["BAddBmm"], () => Check("baddbmm (scaled, broadcast bias)", x => x[0].BAddBmm(x[1], x[2], beta: 0.5, alpha: 0.25), R(162, 2, 1, 4), R(163, 2, 2, 3), R(164, 2, 3, 4))),
        ["minimum"] = (["Minimum"], () => Check("minimum", x => Tensor.Minimum(x[0], x[1]), R(55, 2, 3), R(56, 2, 3))),
        ["maximum"] = (["Maximum"], () => Check("maximum", x => Tensor.Maximum(x[0], x[1]), R(57, 2, 3), R(58, 3))),

        // ---- elementwise functions
        ["exp"] = (["Exp"], () => Check("exp", x => x[0].Exp(), R(60, 2, 3))),
        ["log"] = (["Log"], () => Check("log", x => x[0].Log(), Positive(61, 2, 3))),
        ["log1p"] = (["Log1p"], () => Check("log1p", x => x[0].Log1p(), Positive(62, 2, 3))),
        ["sqrt"] = (["Sqrt"], () => Check("sqrt", x => x[0].Sqrt(), Positive(63, 2, 3))),
        ["rsqrt"] = (["Rsqrt"], () => Check("rsqrt", x => x[0].Rsqrt(), Positive(64, 2, 3))),
        ["abs"] = (["Abs"], () => Check("abs", x => x[0].Abs(), Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, -0.9))),
        ["sign"] = (["Sign"], () => Check("sign (zero gradient)", x => x[0].Sign() * 2.0 + x[0], Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, -0.9))),
        ["tanh"] = (["Tanh"], () => Check("tanh", x => x[0].Tanh(), R(65, 2, 3))),
        ["relu"] = (["Relu"], () => Check("relu", x => x[0].Relu(), Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, -0.9))),
        ["sigmoid"] = (["Sigmoid"], () => Check("sigmoid", x => x[0].Sigmoid(), R(66, 2, 3))),
        ["logsigmoid"] = (["LogSigmoid"], () => Check("logsigmoid", x => x[0].LogSigmoid(), Input.Of(S23, -30, -2, -0.1, 0.4, 3, 25))),
        ["softplus"] = (["Softplus"], () => Check("softplus", x => x[0].Softplus(), R(67, 2, 3))),
        ["gelu_tanh"] = (["Gelu"], () => Check("gelu (tanh approximation)", x => x[0].Gelu(tanhApproximation: true), R(68, 2, 3))),
        ["gelu_exact"] = (["Gelu"], () => Check("gelu (exact)", x => x[0].Gelu(tanhApproximation: false), R(69, 2, 3))),
        ["softmax"] = (["Softmax"], () => Check("softmax", x => x[0].Softmax(-1), R(70, 2, 4))),
        ["softmax_dim0"] = (["Softmax"], () => Check("softmax dim 0", x => x[0].Softmax(0), R(71, 3, 2))),
        ["log_softmax"] = (["LogSoftmax"], () => Check("log_softmax", x => x[0].LogSoftmax(-1), R(72, 2, 4))),
        ["cumsum"] = (["Cumsum"], () => Check("cumsum", x => x[0].Cumsum(1), R(73, 2, 4))),
        ["clamp_both"] = (["Clamp"], () => Check("clamp [-1, 1]", x => x[0].Clamp(-1, 1), Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, -0.9))),
        ["clamp_min"] = (["Clamp"], () => Check("clamp min", x => x[0].Clamp(min: 0.5), Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, 0.9))),
        ["clamp_max"] = (["Clamp"], () => Check("clamp max", x => x[0].Clamp(max: 0.5), Input.Of(S23, -1.5, 0.7, -0.2, 2.0, 0.3, 0.9))),

        // ---- reductions
        ["sum"] = (["Sum"], () => Check("sum", x => x[0].Sum(), R(80, 2, 3))),
        ["sum_dims"] = (["Sum"], () => Check("sum over dims, keepdim", x => x[0].Sum([0, 2], keepDim: true), R(81, 2, 3, 2))),
        ["sum_dim"] = (["Sum"], () => Check("sum over dim", x => x[0].Sum(1), R(82, 2, 3))),
        ["mean"] = (["Mean"], () => Check("mean", x => x[0].Mean(), R(83, 2, 3))),
        ["mean_dims"] = (["Mean"], () => Check("mean over dims", x => x[0].Mean([1, 2]), R(84, 2, 3, 2))),
        ["mean_dim"] = (["Mean"], () => Check("mean over dim, keepdim", x => x[0].Mean(0, keepDim: true), R(85, 2, 3))),
        ["max_all"] = (["Max"], () => Check("max", x => x[0].Max(), R(86, 2, 3))),
        ["min_all"] = (["Min"], () => Check("min", x => x[0].Min(), R(87, 2, 3))),
        ["max_dim"] = (["Max"], () => Check("max over dim (values)", x => x[0].Max(1).Values, R(88, 2, 3))),
        ["min_dim"] = (["Min"], () => Check("min over dim (values), keepdim", x => x[0].Min(0, keepDim: true).Values, R(89, 2, 3))),
        ["norm"] = (["Norm"], () => Check("norm", x => x[0].Norm(), R(90, 2, 3))),
        ["logsumexp"] = (["LogSumExp"], () => Check("logsumexp", x => x[0].LogSumExp(1), R(91, 2, 3))),
        ["logsumexp_dims"] = (["LogSumExp"], () => Check("logsumexp over dims, keepdim", x => x[0].LogSumExp([0, 1], keepDim: true), R(92, 2, 3))),
        ["var"] = (["Var"], () => Check("var (unbiased)", x => x[0].Var(1), R(93, 2, 4))),
        ["var_biased"] = (["Var"], () => Check("var (biased), keepdim", x => x[0].Var(0, unbiased: false, keepDim: true), R(94, 3, 2))),
        ["topk"] = (["TopK"], () => Check("topk (values)", x => x[0].TopK(2).Values, R(95, 2, 4))),
        ["topk_smallest"] = (["TopK"], () => Check("topk smallest (values)", x => x[0].TopK(2, dim: 0, largest: false).Values, R(96, 3, 2))),
        ["sort"] = (["Sort"], () => Check("sort (values)", x => x[0].Sort(-1, descending: true).Values, R(97, 2, 4))),

        // ---- conversion and identity-like
        ["to_dtype"] = (["To"], () => Check("to float64", x => x[0].To(ScalarType.Float64) * 2.0, R(100, 2, 3))),
        ["to_device"] = (["To"], () => Check("to cpu", x => x[0].To(Device.Cpu) * 2.0, R(101, 2, 3))),
        ["contiguous"] = (["Contiguous"], () => Check("contiguous", x => x[0].Transpose(0, 1).Contiguous(), R(102, 2, 3))),
        ["clone"] = (["Clone"], () => Check("clone", x => x[0].Clone() * x[0], R(103, 2, 3))),
        ["alias"] = (["Alias"], () => Check("alias", x => x[0].Alias() * 3.0, R(104, 2, 3))),

        // ---- neural-network functions
        ["linear"] = (["Linear"], () => Check("linear", x => Functional.Linear(x[0], x[1], x[2]), R(110, 2, 3), R(111, 4, 3), R(112, 4))),
        ["linear_3d_nobias"] = (["Linear"], () => Check("linear 3-D, no bias", x => Functional.Linear(x[0], x[1]), R(113, 2, 2, 3), R(114, 4, 3))),
        ["layer_norm"] = (["LayerNorm"], () => Check("layer_norm",
            x => Functional.LayerNorm(x[0], [4], x[1], x[2]), R(115, 2, 4), R(116, 4), R(117, 4))),
        ["layer_norm_plain"] = (["LayerNorm"], () => Check("layer_norm without affine, eps 1e-3",
            x => Functional.LayerNorm(x[0], [2, 3], null, null, 1e-3), R(118, 2, 2, 3))),
        ["embedding"] = (["Embedding"], () => Check("embedding (repeated ids accumulate)",
            x => Functional.Embedding(x[0], Longs([3, 0, 3, 1], 2, 2)), R(119, 4, 3))),
        ["dropout"] = (["Dropout"], () => Check("dropout (same seed, same mask)", x =>
        {
            using var generator = new Generator(7);
            return Functional.Dropout(x[0], 0.4, training: true, generator);
        }, R(120, 4, 5))),
        ["dropout_eval"] = (["Dropout"], () => Check("dropout in eval mode", x => Functional.Dropout(x[0], 0.4, training: false, null), R(121, 2, 3))),
        ["cross_entropy"] = (["CrossEntropy"], () => Check("cross_entropy",
            x => Functional.CrossEntropy(x[0], Longs([2, 0, 1], 3)), R(122, 3, 4))),
        ["cross_entropy_ignore_smooth"] = (["CrossEntropy"], () => Check("cross_entropy with ignore_index and label smoothing",
            x => Functional.CrossEntropy(x[0], Longs([2, -100, 1], 3), ignoreIndex: -100, labelSmoothing: 0.1), R(123, 3, 4))),
        ["mse_loss"] = (["MseLoss"], () => Check("mse_loss", x => Functional.MseLoss(x[0], x[1]), R(124, 2, 3), R(125, 2, 3))),

        // ---- a composite: the DPO loss on sequence log-probs, end to end
        ["dpo_composite"] = (["(composite)"], () => Check("dpo loss composite", x =>
        {
            var logp = x[0].LogSoftmax(-1).Gather(-1, Longs([1, 3, 0, 2], 2, 2, 1)).Squeeze(-1).Sum(1);  // (B=2) sequence log-probs
            var margin = (logp[0] - logp[1]) * 0.1;
            return margin.LogSigmoid().Neg();
        }, R(126, 2, 2, 4))),
    };

    /// <summary>Members that return tensors but have no gradient to check, each with the reason.</summary>
    private static readonly Dictionary<string, string> NotDifferentiable = new()
    {
        ["Eq"] = "comparison (bool)", ["Ne"] = "comparison (bool)", ["Gt"] = "comparison (bool)", ["Ge"] = "comparison (bool)",
        ["Lt"] = "comparison (bool)", ["Le"] = "comparison (bool)",
        ["LogicalAnd"] = "bool", ["LogicalOr"] = "bool", ["LogicalNot"] = "bool", ["IsFinite"] = "bool", ["All"] = "bool", ["Any"] = "bool",
        ["ArgMax"] = "integer indices", ["Multinomial"] = "sampled indices", ["CausalMask"] = "constant bool mask",
        ["Detach"] = "cuts the graph by definition (tested in AutogradTests)",
        ["Empty"] = "creation", ["Zeros"] = "creation", ["Ones"] = "creation", ["Full"] = "creation", ["Arange"] = "creation",
        ["Randn"] = "creation", ["Rand"] = "creation", ["RandInt"] = "creation", ["ZerosLike"] = "creation", ["OnesLike"] = "creation",
        ["FromArray"] = "creation", ["FromSpan"] = "creation", ["FromBytes"] = "creation", ["FromPointer"] = "creation", ["Scalar"] = "creation",
        ["MoveToOuterScope"] = "lifetime, returns the same tensor", ["DetachFromScope"] = "lifetime, returns the same tensor",
        ["get_Grad"] = "the gradient itself",
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Gradient_matches_finite_differences(string op) => Cases[op].Run();

    [Fact]
    public void Every_differentiable_op_has_a_gradient_check()
    {
        static bool ReturnsTensor(Type t) =>
            t == typeof(Tensor) || t == typeof(Tensor[]) || (t.IsGenericType && t.GetGenericArguments().Contains(typeof(Tensor)));

        var members = typeof(Tensor).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Concat(typeof(Functional).GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => ReturnsTensor(m.ReturnType))
            .Select(m => m.Name)
            .Distinct()
            .ToList();
        var covered = Cases.Values.SelectMany(c => c.Covers).ToHashSet();
        var unchecked_ = members.Where(m => !covered.Contains(m) && !NotDifferentiable.ContainsKey(m)).Order().ToList();
        Assert.True(unchecked_.Count == 0, $"ops without a gradient check (add a case, or a reason to NotDifferentiable): {string.Join(", ", unchecked_)}");
        Assert.True(members.Count > 80, $"only {members.Count} tensor-returning members found: is the reflection still looking at the right types?");
    }

    [Fact]
    public void The_gradient_check_itself_catches_a_wrong_gradient()
    {
        // A function whose autograd gradient is deliberately wrong: detach() hides x from autograd in
        // one term, so the analytic gradient misses 2x while finite differences see it.
        var e = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
            Check("broken", x => x[0] + x[0].Detach() * x[0].Detach(), R(200, 2, 3)));
        Assert.Contains("finite differences", e.Message);
    }
}
