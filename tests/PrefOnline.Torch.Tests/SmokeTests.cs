using PrefOnline.Torch;

namespace PrefOnline.Torch.Tests;

public class SmokeTests
{
    [Fact]
    public void Matmul_and_autograd_work()
    {
        using var scope = DisposeScope.Enter();
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2);
        a.RequiresGrad = true;
        var b = Tensor.FromArray(new float[] { 5, 6, 7, 8 }, 2, 2);
        var c = a.Matmul(b).Sum();
        Assert.Equal(1 * 5 + 2 * 7 + 1 * 6 + 2 * 8 + 3 * 5 + 4 * 7 + 3 * 6 + 4 * 8, c.ToDouble());
        c.Backward();
        Assert.Equal(new float[] { 11, 15, 11, 15 }, a.Grad!.ToArray<float>());
    }

    [Fact]
    public void Native_error_becomes_exception()
    {
        using var scope = DisposeScope.Enter();
        var a = Tensor.Zeros([2, 3]);
        var b = Tensor.Zeros([4, 5]);
        var e = Assert.Throws<TorchException>(() => a.Matmul(b));
        Assert.Contains("shapes cannot be multiplied", e.Message);
        Assert.Equal(0, a.Matmul(Tensor.Zeros([3, 1])).Sum().ToDouble());
    }
}
