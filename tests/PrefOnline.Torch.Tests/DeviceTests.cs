namespace PrefOnline.Torch.Tests;

public class DeviceTests
{
    [Theory]
    [InlineData("cpu", DeviceKind.Cpu, -1, "cpu")]
    [InlineData(" CPU ", DeviceKind.Cpu, -1, "cpu")]
    [InlineData("cuda", DeviceKind.Cuda, 0, "cuda:0")]
    [InlineData("cuda:3", DeviceKind.Cuda, 3, "cuda:3")]
    [InlineData("CUDA:0", DeviceKind.Cuda, 0, "cuda:0")]
    public void Parses_torch_device_strings(string text, DeviceKind kind, int index, string canonical)
    {
        var device = Device.Parse(text);
        Assert.Equal(kind, device.Kind);
        Assert.Equal(index, device.Index);
        Assert.Equal(canonical, device.ToString());
        Assert.True(Device.TryParse(text, out var again));
        Assert.Equal(device, again);
    }

    [Theory]
    [InlineData("")]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:+1")]
    [InlineData("cuda:1.5")]
    [InlineData("cuda:128")]
    [InlineData("mps")]
    public void Rejects_anything_else_with_the_valid_forms(string text)
    {
        var e = Assert.Throws<FormatException>(() => Device.Parse(text));
        Assert.Contains("use cpu, cuda or cuda:N", e.Message);
        Assert.False(Device.TryParse(text, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => Device.Cuda(-1));
    }

    [Fact]
    public void Cpu_works_and_cuda_gives_a_clear_error_on_this_libtorch()
    {
        Assert.False(TorchRuntime.CudaAvailable);  // Debian's libtorch is CPU-only; if this changes, so must the test
        using var scope = DisposeScope.Enter();
        var t = Tensor.Ones([2], device: Device.Cpu);
        Assert.Equal(Device.Cpu, t.Device);

        const string expected = "device 'cuda:0' requested, but the loaded libtorch 1.13.0 has no CUDA support (Debian's libtorch-dev is CPU-only)";
        Assert.Contains(expected, Assert.Throws<TorchException>(() => Device.Cuda().EnsureAvailable()).Message);
        Assert.Contains(expected, Assert.Throws<TorchException>(() => Tensor.Zeros([2], device: Device.Parse("cuda"))).Message);
        Assert.Contains(expected, Assert.Throws<TorchException>(() => t.To(Device.Cuda())).Message);
        Assert.Contains(expected, Assert.Throws<TorchException>(() => Tensor.FromArray(new float[] { 1 }).To(Device.Cuda())).Message);
        Assert.Contains("cuda:1", Assert.Throws<TorchException>(() => Tensor.FromSpan<float>([1f], [1], Device.Cuda(1))).Message);
    }
}
