namespace PrefOnline.Torch.Tests;

public class BatchedMatmulTests
{
    [Fact]
    public void Baddbmm_broadcasts_its_input_and_scales_the_product()
    {
        using var scope = DisposeScope.Enter();
        using var generator = new Generator(1);
        var a = Tensor.Randn([3, 4, 5], generator);
        var b = Tensor.Randn([3, 5, 2], generator);
        var bias = Tensor.Randn([4, 2], generator);
        var fused = bias.BAddBmm(a, b, beta: 1, alpha: 0.5).ToArray<float>();
        var plain = (a.Matmul(b) * 0.5 + bias).ToArray<float>();
        Assert.Equal(plain.Length, fused.Length);
        for (var i = 0; i < plain.Length; i++) Assert.Equal(plain[i], fused[i], 5);
        Assert.Equal(a.Matmul(b).ToArray<float>(), a.Bmm(b).ToArray<float>());
        Assert.Throws<TorchException>(() => a.Bmm(a));
    }

    [Fact]
    public void Baddbmm_backpropagates_into_both_factors()
    {
        using var scope = DisposeScope.Enter();
        using var generator = new Generator(2);
        var a = Tensor.Randn([2, 3, 4], generator);
        var b = Tensor.Randn([2, 4, 3], generator);
        a.RequiresGrad = true;
        b.RequiresGrad = true;
        Tensor.Zeros([3, 3]).BAddBmm(a, b, alpha: 2).Sum().Backward();
        // d/da Σ 2·a@b = 2 · (1 @ bᵀ): every row of a's grad is 2 · the row sums of b.
        var expected = (b.Sum(2).Unsqueeze(1).Expand(2, 3, 4) * 2).ToArray<float>();
        var got = a.Grad!.ToArray<float>();
        for (var i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 4);
        Assert.NotNull(b.Grad);
    }
}
