using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests;

/// <summary>Model:Device and Model:Dtype as the configuration gives them, and what this build can run.</summary>
public sealed class TensorPlacementTests
{
    [Theory]
    [InlineData("cpu", "cpu")]
    [InlineData(" CPU ", "cpu")]
    [InlineData("cuda", "cuda:0")]
    [InlineData("cuda:3", "cuda:3")]
    [InlineData("CUDA:0", "cuda:0")]
    public void Parses_torch_device_strings(string text, string canonical)
    {
        var placement = new TensorPlacement(text, "float32");
        Assert.Equal(canonical, placement.DeviceName);
        Assert.Equal(canonical == "cpu" ? DeviceType.CPU : DeviceType.CUDA, placement.Device.type);
        Assert.Equal(canonical, placement.Device.ToString());
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
    public void Rejects_any_other_device_naming_the_valid_forms(string text)
    {
        var e = Assert.Throws<FormatException>(() => new TensorPlacement(text, "float32"));
        Assert.Contains("use cpu, cuda or cuda:N", e.Message);
    }

    [Theory]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("bfloat16", ScalarType.BFloat16)]
    [InlineData(" BFloat16 ", ScalarType.BFloat16)]
    public void Parses_the_two_dtypes(string text, ScalarType dtype)
    {
        var placement = new TensorPlacement("cpu", text);
        Assert.Equal(dtype, placement.Dtype);
        Assert.Equal(text.Trim().ToLowerInvariant(), placement.DtypeName);
    }

    [Theory]
    [InlineData("float16")]
    [InlineData("fp32")]
    [InlineData("int8")]
    public void Rejects_any_other_dtype_naming_the_valid_ones(string text)
    {
        var e = Assert.Throws<FormatException>(() => new TensorPlacement("cpu", text));
        Assert.Contains("use float32 or bfloat16", e.Message);
    }

    [Fact]
    public void Cpu_is_available_and_cuda_is_a_clear_error_in_a_cpu_build()
    {
        Assert.Equal("cpu", TorchEngine.Backend);  // CI builds TorchSharp-cpu; a cuda build runs this on a GPU machine
        Assert.Null(TensorPlacement.Cpu.Problem());
        Assert.Same(TensorPlacement.Cpu, TensorPlacement.Cpu.EnsureAvailable());

        var cuda = new TensorPlacement("cuda:1", "bfloat16");
        var e = Assert.Throws<InvalidOperationException>(cuda.EnsureAvailable);
        Assert.Equal("'cuda:1' needs a CUDA build of the tensor engine; this one is TorchSharp-cpu (build with -p:TorchBackend=cuda, or use the GPU image)", e.Message);
    }

    [Fact]
    public void The_gemm_probe_measures_a_plausible_speed()
    {
        var gflops = GemmProbe.MeasureGflops(n: 256, repeats: 2);
        Assert.InRange(gflops, 0.5, 100_000);
    }
}
