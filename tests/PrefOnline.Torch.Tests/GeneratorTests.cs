namespace PrefOnline.Torch.Tests;

public class GeneratorTests
{
    private static float[] Draws(Generator g)
    {
        using var scope = DisposeScope.Enter();
        var normal = Tensor.Randn([5], g).ToArray<float>();
        var uniform = Tensor.Rand([3], g).ToArray<float>();
        var ints = Tensor.RandInt(0, 1000, [3], g).To(ScalarType.Float32).ToArray<float>();
        var probs = Tensor.FromArray(new[] { 0.1f, 0.2f, 0.3f, 0.4f });
        var sampled = probs.Multinomial(6, replacement: true, g).To(ScalarType.Float32).ToArray<float>();
        var dropped = Functional.Dropout(Tensor.Ones([8]), 0.5, training: true, g).ToArray<float>();
        var init = Tensor.Empty([4]);
        init.NormalInPlace(0, 0.02, g);
        var uni = Tensor.Empty([4]);
        uni.UniformInPlace(-1, 1, g);
        return [.. normal, .. uniform, .. ints, .. sampled, .. dropped, .. init.ToArray<float>(), .. uni.ToArray<float>()];
    }

    [Fact]
    public void Same_seed_gives_the_same_draws_and_another_seed_does_not()
    {
        using var a = new Generator(123);
        using var b = new Generator(123);
        using var c = new Generator(124);
        var first = Draws(a);
        Assert.Equal(first, Draws(b));
        Assert.NotEqual(first, Draws(c));
        Assert.NotEqual(first, Draws(a));  // the stream moves on
        a.SetSeed(123);
        Assert.Equal(first, Draws(a));
        Assert.Equal(123UL, a.Seed);
    }

    [Fact]
    public void Draws_match_torch_Generator_manual_seed()
    {
        // libtorch's CPU generator is the same Mersenne Twister as PyTorch's: seed 0's first normals are well known.
        using var g = new Generator(0);
        using var scope = DisposeScope.Enter();
        var x = Tensor.Randn([3], g).ToArray<float>();
        Assert.Equal(1.5409961f, x[0], 5);
        Assert.Equal(-0.2934289f, x[1], 5);
        Assert.Equal(-2.1787894f, x[2], 5);
    }

    [Fact]
    public void State_can_be_saved_and_restored_to_replay_the_same_draws()
    {
        using var g = new Generator(7);
        Draws(g);
        using var state = g.GetState().DetachFromScope();
        Assert.Equal(ScalarType.UInt8, state.Dtype);
        var next = Draws(g);
        Assert.NotEqual(next, Draws(g));
        g.SetState(state);
        Assert.Equal(next, Draws(g));

        // Into a different generator: a resumed worker samples what the original would have.
        using var other = new Generator(999);
        other.SetState(state);
        Assert.Equal(next, Draws(other));
    }

    [Fact]
    public void A_disposed_generator_is_refused()
    {
        var g = new Generator(1);
        g.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Tensor.Randn([2], g));
        Assert.Throws<ObjectDisposedException>(() => g.SetSeed(2));
        g.Dispose();
    }
}
