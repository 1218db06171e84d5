using PrefOnline.Torch.Modules;
using PrefOnline.Torch.Optim;
using PrefOnline.Torch.Serialization;

namespace PrefOnline.Torch.Tests;

public class ModuleTests
{
    /// <summary>A miniature GPT-2 block tree, to get names like h.1.attn.c_attn.weight.</summary>
    private sealed class Attention : Module
    {
        public Attention(Generator g)
        {
            CAttn = RegisterModule("c_attn", new Linear(4, 12, generator: g));
            CProj = RegisterModule("c_proj", new Linear(4, 4, generator: g));
        }

        public Linear CAttn { get; }
        public Linear CProj { get; }
    }

    private sealed class Block : Module
    {
        public Block(Generator g)
        {
            RegisterModule("ln_1", new LayerNorm(4));
            RegisterModule("attn", new Attention(g));
        }
    }

    private sealed class TinyModel : Module
    {
        public TinyModel(ulong seed, int layers = 2)
        {
            using var g = new Generator(seed);
            Wte = RegisterModule("wte", new Embedding(10, 4, initStd: 0.02, generator: g));
            H = RegisterModule("h", new ModuleList<Block>(Enumerable.Range(0, layers).Select(_ => new Block(g))));
            RegisterBuffer("bias", Tensor.Ones([3, 3], ScalarType.Bool).Tril());
        }

        public Embedding Wte { get; }
        public ModuleList<Block> H { get; }
    }

    private sealed class Tied : Module
    {
        public Tied()
        {
            var emb = RegisterModule("wte", new Embedding(5, 3));
            RegisterModule("head", new TiedHead(emb.Weight));
        }
    }

    private sealed class TiedHead : Module
    {
        public TiedHead(Tensor weight) => RegisterParameter("weight", weight);
    }

    [Fact]
    public void Parameters_have_pytorch_dotted_names()
    {
        using var model = new TinyModel(1);
        string[] expected =
        [
            "wte.weight",
            "h.0.ln_1.weight", "h.0.ln_1.bias",
            "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias",
            "h.1.ln_1.weight", "h.1.ln_1.bias",
            "h.1.attn.c_attn.weight", "h.1.attn.c_attn.bias", "h.1.attn.c_proj.weight", "h.1.attn.c_proj.bias",
        ];
        Assert.Equal(expected, model.NamedParameters().Select(p => p.Name));
        Assert.Equal(expected.Append("bias").Order(), model.StateDict().Keys.Order());
        Assert.Equal(["bias"], model.NamedBuffers().Select(b => b.Name));
        Assert.Contains("h.1.attn.c_attn", model.NamedModules().Select(m => m.Name));
        Assert.Same(model.H[1], model.NamedModules().Single(m => m.Name == "h.1").Module);
        Assert.All(model.Parameters(), p => Assert.True(p.RequiresGrad));
        Assert.Equal(40 + 2 * (4 + 4 + 48 + 12 + 16 + 4), model.ParameterCount());
        Assert.Equal([12L, 4L], model.H[0].NamedParameters().Single(p => p.Name == "attn.c_attn.weight").Parameter.Shape);
    }

    [Fact]
    public void Registration_rejects_dotted_empty_and_duplicate_names()
    {
        Assert.Throws<ArgumentException>(() => new BadNames("a.b"));
        Assert.Throws<ArgumentException>(() => new BadNames(""));
        Assert.Throws<ArgumentException>(() => new BadNames("weight"));
    }

    private sealed class BadNames : Module
    {
        public BadNames(string name)
        {
            RegisterParameter("weight", Tensor.Zeros([1]));
            RegisterParameter(name, Tensor.Zeros([1]));
        }
    }

    [Fact]
    public void Load_state_dict_copies_values_through_safetensors()
    {
        using var a = new TinyModel(1);
        using var b = new TinyModel(2);
        var path = Path.Combine(Path.GetTempPath(), $"prefonline-module-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Write(path, a.StateDict());
            using var content = SafeTensorsFile.Read(path);
            b.LoadStateDict(content.Tensors);
        }
        finally
        {
            File.Delete(path);
        }
        foreach (var (name, t) in a.StateDict())
        {
            using var scope = DisposeScope.Enter();
            Assert.True(t.Eq(b.StateDict()[name]).All().ToInt64() == 1, $"{name} differs after loading");
        }
    }

    [Fact]
    public void Strict_load_reports_every_missing_unexpected_and_misshapen_name_and_copies_nothing()
    {
        using var model = new TinyModel(1);
        using var scope = DisposeScope.Enter();
        var before = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        var source = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Detach().Clone().Add(1.0));
        source.Remove("h.1.ln_1.bias");
        source.Remove("wte.weight");
        source["lm_head.weight"] = Tensor.Zeros([10, 4]);
        source["h.0.attn.c_attn.weight"] = Tensor.Zeros([4, 12]);  // transposed: GPT-2's Conv1D layout
        source["h.0.attn.c_proj.bias"] = Tensor.Zeros([5]);
        source["h.1.ln_1.weight"] = Tensor.Zeros([4], ScalarType.Int64);

        var e = Assert.Throws<InvalidDataException>(() => model.LoadStateDict(source));
        Assert.Contains("missing 2: wte.weight, h.1.ln_1.bias", e.Message);
        Assert.Contains("unexpected 1: lm_head.weight", e.Message);
        Assert.Contains("h.0.attn.c_attn.weight: shape [4, 12] does not match the model's [12, 4]", e.Message);
        Assert.Contains("h.0.attn.c_proj.bias: shape [5] does not match the model's [4]", e.Message);
        Assert.Contains("h.1.ln_1.weight: dtype Int64 cannot be loaded into the model's Float32", e.Message);
        foreach (var (name, t) in model.StateDict())
            Assert.True(t.Eq(before[name]).All().ToInt64() == 1, $"{name} was modified by a failed load");

        // Non-strict ignores names but never shapes.
        var shapeOnly = Assert.Throws<InvalidDataException>(() => model.LoadStateDict(source, strict: false));
        Assert.DoesNotContain("missing", shapeOnly.Message);
        Assert.Contains("h.0.attn.c_attn.weight: shape", shapeOnly.Message);

        // Non-strict with only good entries loads those and leaves the rest.
        model.LoadStateDict(new Dictionary<string, Tensor> { ["h.0.ln_1.bias"] = Tensor.Full([4], 3) }, strict: false);
        Assert.Equal(new float[] { 3, 3, 3, 3 }, model.StateDict()["h.0.ln_1.bias"].ToArray<float>());
        Assert.Equal(before["h.1.ln_1.bias"].ToArray<float>(), model.StateDict()["h.1.ln_1.bias"].ToArray<float>());

        // Half-precision weights (a Hugging Face fp16 checkpoint) load into a float32 model.
        var half = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Dtype.IsFloatingPoint() ? kv.Value.Detach().To(ScalarType.Float16) : kv.Value);
        model.LoadStateDict(half);
        Assert.Equal(ScalarType.Float32, model.Wte.Weight.Dtype);
    }

    [Fact]
    public void Tied_weights_are_one_parameter_under_two_state_dict_names()
    {
        using var model = new Tied();
        Assert.Equal(["wte.weight"], model.NamedParameters().Select(p => p.Name));
        Assert.Single(model.Parameters());
        Assert.Equal(["head.weight", "wte.weight"], model.StateDict().Keys.Order());
        using var optimizer = new AdamW(model.Parameters(), new AdamWOptions());  // would throw on a duplicate
    }

    [Fact]
    public void Train_eval_zero_grad_and_freezing_apply_to_the_whole_tree()
    {
        using var model = new TinyModel(3);
        Assert.True(model.H[1].Training);
        model.Eval();
        Assert.False(model.H[1].Training);
        model.Train();
        Assert.True(model.H[0].Training);

        using (var scope = DisposeScope.Enter())
        {
            var ids = Tensor.FromArray(new long[] { 1, 2 });
            model.Wte.Forward(ids).Sum().Backward();
        }
        Assert.NotNull(model.Wte.Weight.Grad);
        model.ZeroGrad();
        Assert.Null(model.Wte.Weight.Grad);

        model.SetRequiresGrad(false);
        Assert.All(model.Parameters(), p => Assert.False(p.RequiresGrad));
    }

    [Fact]
    public void Converting_dtype_keeps_parameter_identity_so_an_optimizer_stays_valid()
    {
        using var model = new TinyModel(4);
        var weight = model.Wte.Weight;
        using (var scope = DisposeScope.Enter())
        {
            model.To(ScalarType.Float64);
            Assert.Same(weight, model.Wte.Weight);
            Assert.Equal(ScalarType.Float64, weight.Dtype);
            Assert.True(weight.RequiresGrad);
            Assert.True(weight.IsLeaf);
            Assert.Equal(ScalarType.Bool, model.StateDict()["bias"].Dtype);  // integer/bool buffers keep their type
            using var optimizer = new AdamW(model.Parameters(), new AdamWOptions());
            model.Wte.Forward(Tensor.FromArray(new long[] { 3 })).Sum().Backward();
            optimizer.Step();
        }
        Assert.Throws<ArgumentException>(() => model.To(ScalarType.Int64));
        var cuda = Assert.Throws<TorchException>(() => model.To(Device.Cuda()));
        Assert.Contains("no CUDA support", cuda.Message);
        Assert.Equal(Device.Cpu, model.Wte.Weight.Device);
        model.To(Device.Cpu);
    }

    [Fact]
    public void Initialisation_is_reproducible_from_the_seed_and_follows_pytorch_bounds()
    {
        using var a = new TinyModel(9);
        using var b = new TinyModel(9);
        using var c = new TinyModel(10);
        Assert.Equal(a.Wte.Weight.ToArray<float>(), b.Wte.Weight.ToArray<float>());
        Assert.NotEqual(a.Wte.Weight.ToArray<float>(), c.Wte.Weight.ToArray<float>());

        using var g = new Generator(1);
        using var linear = new Linear(100, 50, generator: g);
        var bound = 1 / Math.Sqrt(100);
        Assert.All(linear.Weight.ToArray<float>(), w => Assert.InRange(w, -bound, bound));
        Assert.All(linear.Bias!.ToArray<float>(), w => Assert.InRange(w, -bound, bound));
        using var ln = new LayerNorm(3);
        Assert.Equal(new float[] { 1, 1, 1 }, ln.Weight.ToArray<float>());
        Assert.Equal(new float[] { 0, 0, 0 }, ln.Bias.ToArray<float>());
    }

    [Fact]
    public void Module_parameters_live_outside_scopes_and_dispose_with_the_module()
    {
        Linear linear;
        using (var scope = DisposeScope.Enter())
        {
            linear = new Linear(3, 2);
            Assert.Equal(0, scope.OwnedCount);
        }
        Assert.False(linear.Weight.IsDisposed);
        linear.Dispose();
        Assert.True(linear.Weight.IsDisposed);
        Assert.True(linear.Bias!.IsDisposed);
    }
}
