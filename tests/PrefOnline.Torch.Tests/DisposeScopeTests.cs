using PrefOnline.Torch.Tests.Helpers;

namespace PrefOnline.Torch.Tests;

public class DisposeScopeTests
{
    [Fact]
    public void A_scope_frees_what_was_created_in_it_and_only_that()
    {
        using var outside = Tensor.Ones([2]);
        Tensor inner;
        using (var scope = DisposeScope.Enter())
        {
            Assert.Same(scope, DisposeScope.Current);
            inner = outside * 2.0;
            var intermediate = inner + 1.0;
            Assert.Equal(2, scope.OwnedCount);
            Assert.False(intermediate.IsDisposed);
        }
        Assert.True(inner.IsDisposed);
        Assert.False(outside.IsDisposed);
        Assert.Null(DisposeScope.Current);
    }

    [Fact]
    public void Nested_scopes_free_innermost_first_and_restore_the_outer_one()
    {
        using var outer = DisposeScope.Enter();
        var a = Tensor.Ones([1]);
        Tensor b;
        using (var inner = DisposeScope.Enter())
        {
            Assert.Same(outer, inner.Outer);
            b = a * 3.0;
            Assert.Equal(1, inner.OwnedCount);
            Assert.Equal(1, outer.OwnedCount);
        }
        Assert.True(b.IsDisposed);
        Assert.False(a.IsDisposed);
        Assert.Same(outer, DisposeScope.Current);
    }

    [Fact]
    public void MoveToOuterScope_hands_a_result_to_the_caller_scope()
    {
        Tensor Compute(Tensor x)
        {
            using var scope = DisposeScope.Enter();
            var t = (x * 2.0).Exp();
            return (t + 1.0).MoveToOuterScope();
        }

        Tensor result;
        using (var outer = DisposeScope.Enter())
        {
            result = Compute(Tensor.Ones([2]));
            Assert.False(result.IsDisposed);
            Assert.Equal(2, outer.OwnedCount);  // the input and the result; the intermediates are gone
            Assert.Equal(Math.Exp(2) + 1, result[0].ToDouble(), 5);
        }
        Assert.True(result.IsDisposed);

        // Out of the outermost scope, the caller owns it.
        Tensor free;
        using (DisposeScope.Enter()) free = Tensor.Ones([1]).MoveToOuterScope();
        Assert.False(free.IsDisposed);
        free.Dispose();
    }

    [Fact]
    public void MoveToOuter_on_the_scope_and_DetachFromScope()
    {
        Tensor[] moved;
        Tensor detached;
        using (var outer = DisposeScope.Enter())
        {
            using (var inner = DisposeScope.Enter())
            {
                var a = Tensor.Ones([1]);
                var b = Tensor.Zeros([1]);
                detached = Tensor.Full([1], 7).DetachFromScope();
                moved = inner.MoveToOuter(a, b);
                Assert.Equal(0, inner.OwnedCount);
                Assert.Throws<InvalidOperationException>(() => inner.MoveToOuter(a));  // no longer its own
            }
            Assert.All(moved, t => Assert.False(t.IsDisposed));
            Assert.Equal(2, outer.OwnedCount);
        }
        Assert.All(moved, t => Assert.True(t.IsDisposed));
        Assert.False(detached.IsDisposed);  // detached tensors outlive every scope
        Assert.Equal(7.0, detached.ToDouble());
        detached.Dispose();
    }

    [Fact]
    public void A_tensor_disposed_early_is_not_disposed_twice_and_is_not_counted()
    {
        using var scope = DisposeScope.Enter();
        var a = Tensor.Ones([3]);
        a.Dispose();
        Assert.Equal(0, scope.OwnedCount);
        Assert.Throws<ObjectDisposedException>(() => a.MoveToOuterScope());
    }

    [Fact]
    public void Disposing_or_moving_out_on_another_thread_throws()
    {
        var scope = DisposeScope.Enter();
        try
        {
            var e = Assert.IsType<InvalidOperationException>(OtherThread.Run(scope.Dispose));
            Assert.Contains("thread", e.Message);
            var t = Tensor.Ones([1]);
            var move = Assert.IsType<InvalidOperationException>(OtherThread.Run(() => t.MoveToOuterScope()));
            Assert.Contains("thread-bound", move.Message);
            Assert.IsType<InvalidOperationException>(OtherThread.Run(() => t.DetachFromScope()));
            Assert.Same(t, t.MoveToOuterScope());  // on its own thread it works: the caller now owns t
            Assert.Equal(0, scope.OwnedCount);
            t.Dispose();
        }
        finally
        {
            scope.Dispose();
        }
        Assert.True(scope.IsDisposed);
        Assert.Null(DisposeScope.Current);
    }

    [Fact]
    public void Scopes_are_per_thread()
    {
        using var scope = DisposeScope.Enter();
        Assert.Null(OtherThread.Get(() => DisposeScope.Current));
        // A tensor made on another thread while this scope is open is not registered here.
        var elsewhere = OtherThread.Get(() => Tensor.Ones([1]));
        Assert.Equal(0, scope.OwnedCount);
        elsewhere.Dispose();
    }

    [Fact]
    public void Disposing_out_of_order_throws_and_names_the_leak()
    {
        var outer = DisposeScope.Enter();
        var inner = DisposeScope.Enter();
        var e = Assert.Throws<InvalidOperationException>(outer.Dispose);
        Assert.Contains("innermost first", e.Message);
        inner.Dispose();
        outer.Dispose();
        Assert.Null(DisposeScope.Current);
    }

    [Fact]
    public void A_long_lived_scope_does_not_keep_every_tensor_it_ever_saw()
    {
        using var outer = DisposeScope.Enter();
        var weak = new List<WeakReference>();
        for (var i = 0; i < 5000; i++)
        {
            Tensor moved;
            using (DisposeScope.Enter()) moved = Tensor.Ones([1]).MoveToOuterScope();
            moved.Dispose();  // the caller frees the result early
            if (i < 100) weak.Add(new WeakReference(moved));
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        // The outer scope compacted its list: early results are collectable.
        Assert.Contains(weak, w => !w.IsAlive);
        Assert.Equal(0, outer.OwnedCount);
    }
}
