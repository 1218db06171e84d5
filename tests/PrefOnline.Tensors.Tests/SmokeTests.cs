using PrefOnline.Tensors.Tests.Build;
using TorchSharp;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests;

/// <summary>TorchSharp loads here (Debian 12 included) from this output's own, patched copy, and its
/// math, autograd and AdamW work.</summary>
public sealed class SmokeTests
{
    [Fact]
    public void TorchSharp_loads_its_native_library_from_the_build_output()
    {
        TorchEngine.EnsureLoaded();
        Assert.Equal("2.10.0", TorchEngine.LibTorchVersion);
        Assert.Equal(BuildFacts.TorchSharpVersion, TorchEngine.TorchSharpVersion);
        Assert.Equal(BuildFacts.OutputLibTorchSharp, TorchEngine.LoadedNativeLibrary());
    }

    [Fact]
    public void Matmul_and_autograd_work()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]).requires_grad_();
        var b = tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        var c = a.matmul(b).sum();
        Assert.Equal(1 * 5 + 2 * 7 + 1 * 6 + 2 * 8 + 3 * 5 + 4 * 7 + 3 * 6 + 4 * 8, c.item<float>());
        c.backward();
        Assert.Equal(new float[] { 11, 15, 11, 15 }, a.grad!.data<float>().ToArray());
    }

    [Fact]
    public void One_AdamW_step_matches_the_update_rule()
    {
        using var scope = NewDisposeScope();
        // loss = p², g = 2p = 2 at p = 1. First step: m̂ = g, v̂ = g², so
        // p ← p·(1 − lr·λ) − lr·g/(|g| + ε) = 0.999 − 0.1·2/(2 + 1e-8).
        var p = new TorchSharp.Modules.Parameter(tensor(new[] { 1.0 }));
        using var optimizer = optim.AdamW([p], lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01);
        p.pow(2).sum().backward();
        optimizer.step();
        Assert.Equal(0.999 - 0.1 * 2 / (2 + 1e-8), p.item<double>(), 12);
    }

    /// <summary>
    /// libtorch's errors become exceptions where TorchSharp's export catches them (mm, bmm, linear,
    /// addmm, reshape, ...). Not every export does: THSTensor_matmul has no catch in TorchSharp 0.107, so a
    /// shape error there aborts the process (on every platform). The project uses mm/bmm/linear/addmm
    /// wherever a shape could come from data, never matmul.
    /// </summary>
    [Fact]
    public void A_shape_error_becomes_an_exception_and_the_engine_keeps_working()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ExternalException>(() => zeros(2, 3).mm(zeros(4, 5)));
        Assert.Contains("cannot be multiplied", e.Message);
        Assert.Throws<ExternalException>(() => zeros(2, 3).reshape(7));
        Assert.Equal(0, zeros(2, 3).mm(zeros(3, 1)).sum().item<float>());
    }
}
