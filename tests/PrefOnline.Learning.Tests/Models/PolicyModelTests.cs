using PrefOnline.Learning.Models;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

public sealed class PolicyModelTests
{
    [Fact]
    public void Preset_parameter_counts_match_gpt2_arithmetic()
    {
        // tiny: wte 258·128 + wpe 256·128 + 4 blocks · 198,272 + ln_f 256 (the LM head is wte, counted once).
        using (var tiny = PolicyModel.Create(Gpt2Config.Tiny(), 0)) Assert.Equal(859_136, StateDicts.ParameterCount(tiny));
        using (var small = PolicyModel.Create(Gpt2Config.Small(), 0)) Assert.Equal(10_844_928, StateDicts.ParameterCount(small));
    }

    [Fact]
    public void State_dict_uses_hugging_face_names_and_conv1d_layout()
    {
        using var model = PolicyModel.Create(Micro(), 0);
        var state = model.state_dict();
        Assert.Equal(2 + 2 * 12 + 2, state.Count);
        Assert.Equal([258L, 32], state["wte.weight"].shape);
        Assert.Equal([64L, 32], state["wpe.weight"].shape);
        Assert.Equal([32L, 96], state["h.0.attn.c_attn.weight"].shape);   // [in, out]
        Assert.Equal([96L], state["h.0.attn.c_attn.bias"].shape);
        Assert.Equal([32L, 32], state["h.1.attn.c_proj.weight"].shape);
        Assert.Equal([32L, 128], state["h.1.mlp.c_fc.weight"].shape);
        Assert.Equal([128L, 32], state["h.1.mlp.c_proj.weight"].shape);
        Assert.Contains("h.1.ln_2.bias", state.Keys);
        Assert.Contains("ln_f.weight", state.Keys);
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("lm_head", StringComparison.Ordinal));
    }

    [Fact]
    public void Init_follows_gpt2_and_is_reproducible_from_the_seed()
    {
        var config = Gpt2Config.Small();
        using var a = PolicyModel.Create(config, 7);
        using var b = PolicyModel.Create(config, 7);
        using var c = PolicyModel.Create(config, 8);
        using var scope = NewDisposeScope();
        var sa = a.state_dict();
        Assert.Equal(0.02, Std(sa["h.0.attn.c_attn.weight"]), 3);
        Assert.Equal(0.02, Std(sa["wte.weight"]), 3);
        Assert.Equal(0.02 / Math.Sqrt(2 * config.Layers), Std(sa["h.3.attn.c_proj.weight"]), 3);
        Assert.Equal(0.02 / Math.Sqrt(2 * config.Layers), Std(sa["h.5.mlp.c_proj.weight"]), 3);
        Assert.Equal(0, sa["h.2.mlp.c_fc.bias"].abs().max().ToDouble());
        Assert.Equal(1, sa["h.0.ln_1.weight"].mean().ToDouble());
        foreach (var (name, tensor) in b.state_dict())
            Assert.True(tensor.eq(sa[name]).all().ToDouble() == 1, $"{name} differs between two models of seed 7");
        Assert.False(c.state_dict()["wte.weight"].eq(sa["wte.weight"]).all().ToDouble() == 1);
    }

    [Fact]
    public void Future_tokens_do_not_change_earlier_logits()
    {
        using var model = PolicyModel.Create(Micro(), 3);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var random = new Random(5);
        var prefix = RandomTokens(random, 10);
        var first = model.Forward(Tokens([[.. prefix, .. RandomTokens(random, 15)]]));
        var second = model.Forward(Tokens([[.. prefix, .. RandomTokens(random, 15)]]));
        var early = MaxAbsDiff(first.slice(1, 0, 10, 1).contiguous().data<float>().ToArray(), second.slice(1, 0, 10, 1).contiguous().data<float>().ToArray());
        var late = MaxAbsDiff(first.slice(1, 10, 25, 1).contiguous().data<float>().ToArray(), second.slice(1, 10, 25, 1).contiguous().data<float>().ToArray());
        Assert.True(early < 1e-5, $"earlier logits moved by {early}");
        Assert.True(late > 1e-3, "later logits should depend on the changed tokens");
    }

    [Fact]
    public void Dropout_is_reproducible_from_the_seed_and_off_in_eval_mode()
    {
        float[] Run(PolicyModel model)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return model.Forward(Tokens([[1, 2, 3, 4, 5, 6]])).data<float>().ToArray();
        }

        using var a = PolicyModel.Create(Micro(dropout: 0.2), 9);
        using var b = PolicyModel.Create(Micro(dropout: 0.2), 9);
        var a1 = Run(a);
        var a2 = Run(a);
        Assert.True(MaxAbsDiff(a1, a2) > 1e-3, "two training-mode passes should drop different units");
        Assert.Equal(a1, Run(b));                                   // same seed, same masks
        a.eval();
        var e1 = Run(a);
        Assert.Equal(e1, Run(a));
        Assert.True(MaxAbsDiff(e1, a1) > 1e-3);
    }

    [Fact]
    public void Copy_is_independent_of_the_original()
    {
        using var model = PolicyModel.Create(Micro(), 1);
        using var copy = model.Copy();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = Tokens([[5, 6, 7]]);
        Assert.Equal(model.Forward(tokens).data<float>().ToArray(), copy.Forward(tokens).data<float>().ToArray());
        using (no_grad()) model.state_dict()["ln_f.bias"].fill_(1);
        Assert.NotEqual(model.Forward(tokens).data<float>().ToArray(), copy.Forward(tokens).data<float>().ToArray());
    }

    [Fact]
    public void Bad_inputs_are_refused_with_a_clear_message()
    {
        using var model = PolicyModel.Create(Micro(), 1);
        using var scope = NewDisposeScope();
        var tooLong = Assert.Throws<ArgumentException>(() => model.Forward(Tokens([Enumerable.Range(0, 65).ToArray()])));
        Assert.Contains("exceeds the model's context of 64", tooLong.Message);
        Assert.Throws<ArgumentException>(() => model.Forward(zeros([2, 3])));                    // float tokens
        Assert.Throws<ArgumentException>(() => model.Forward(Tokens([[1, 2, 3]]), Tokens([[1, 1]])));   // mask shape
        Assert.Throws<ArgumentException>(() => PolicyModel.Create(Micro() with { Width = 30 }, 0));      // 30 % 4 != 0
    }

    private static double Std(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.flatten().var(0).sqrt().ToDouble();
    }
}
