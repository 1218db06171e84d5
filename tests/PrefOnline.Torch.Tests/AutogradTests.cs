using PrefOnline.Torch.Tests.Helpers;

namespace PrefOnline.Torch.Tests;

/// <summary>requires_grad, backward, grad, detach and the no_grad scope.</summary>
public class AutogradTests
{
    [Fact]
    public void Gradients_accumulate_until_cleared()
    {
        using var scope = DisposeScope.Enter();
        var x = Tensor.FromArray(new double[] { 1, 2, 3 });
        Assert.False(x.RequiresGrad);
        x.RequiresGrad = true;
        Assert.True(x.IsLeaf);
        Assert.Null(x.Grad);
        (x * x).Sum().Backward();
        Assert.Equal(new double[] { 2, 4, 6 }, x.Grad!.ToArray<double>());
        (x * 3.0).Sum().Backward();
        Assert.Equal(new double[] { 5, 7, 9 }, x.Grad!.ToArray<double>());
        x.ClearGrad();
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Backward_with_an_explicit_gradient_and_retained_graph()
    {
        using var scope = DisposeScope.Enter();
        var x = Tensor.FromArray(new double[] { 1, 2 });
        x.RequiresGrad = true;
        var y = x * x;  // not a scalar
        y.Backward(Tensor.FromArray(new double[] { 1, 10 }), retainGraph: true);
        Assert.Equal(new double[] { 2, 40 }, x.Grad!.ToArray<double>());
        y.Backward(Tensor.FromArray(new double[] { 1, 0 }));  // the retained graph can be used again
        Assert.Equal(new double[] { 4, 40 }, x.Grad!.ToArray<double>());
        Assert.False(y.IsLeaf);
    }

    [Fact]
    public void Detach_cuts_the_graph_but_shares_the_data()
    {
        using var scope = DisposeScope.Enter();
        var x = Tensor.FromArray(new double[] { 1, 2 });
        x.RequiresGrad = true;
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        (x * d).Sum().Backward();
        Assert.Equal(new double[] { 1, 2 }, x.Grad!.ToArray<double>());  // d·x: only the x factor is differentiated
        d.Fill(5);  // same storage
        Assert.Equal(new double[] { 5, 5 }, x.ToArray<double>());
    }

    [Fact]
    public void NoGrad_scope_records_nothing_and_restores_the_mode_when_nested()
    {
        using var scope = DisposeScope.Enter();
        var x = Tensor.Ones([2]);
        x.RequiresGrad = true;
        Assert.True(NoGradScope.IsGradEnabled);
        using (NoGradScope.Enter())
        {
            Assert.False(NoGradScope.IsGradEnabled);
            Assert.False((x * 2.0).RequiresGrad);
            using (NoGradScope.Enter()) Assert.False(NoGradScope.IsGradEnabled);
            Assert.False(NoGradScope.IsGradEnabled);  // the inner one restored "off", not "on"
        }
        Assert.True(NoGradScope.IsGradEnabled);
        Assert.True((x * 2.0).RequiresGrad);
    }

    [Fact]
    public void NoGrad_scope_is_thread_local_and_must_end_on_its_thread()
    {
        var scope = NoGradScope.Enter();
        try
        {
            Assert.True(OtherThread.Get(() => NoGradScope.IsGradEnabled));
            var e = Assert.IsType<InvalidOperationException>(OtherThread.Run(scope.Dispose));
            Assert.Contains("thread-local", e.Message);
            Assert.False(NoGradScope.IsGradEnabled);
        }
        finally
        {
            scope.Dispose();
        }
        Assert.True(NoGradScope.IsGradEnabled);
    }

    [Fact]
    public void In_place_updates_of_parameters_are_not_recorded()
    {
        using var scope = DisposeScope.Enter();
        var p = Tensor.Ones([2]);
        p.RequiresGrad = true;
        p.AddInPlace(Tensor.Ones([2]), alpha: 0.5);
        p.MulInPlace(2);
        p.CopyFrom(p * 2.0);
        Assert.True(p.IsLeaf);
        Assert.Equal(new float[] { 6, 6 }, p.ToArray<float>());
        (p * p).Sum().Backward();
        Assert.Equal(new float[] { 12, 12 }, p.Grad!.ToArray<float>());
    }
}
