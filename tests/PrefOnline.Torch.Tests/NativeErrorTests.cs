namespace PrefOnline.Torch.Tests;

/// <summary>
/// Every native failure becomes a <see cref="TorchException"/> carrying libtorch's own message,
/// prefixed with the operation, and the process keeps working: after one error, after thousands, and
/// with errors raised on two threads at once (the message is thread-local and never crosses over).
/// </summary>
public class NativeErrorTests
{
    private static readonly long[] Huge = [1L << 40, 1L << 40];

    /// <summary>Name → (the failing call, a fragment of libtorch's message).</summary>
    private static readonly Dictionary<string, (Action Fail, string Message)> Failures = new()
    {
        ["matmul shapes"] = (() => Tensor.Zeros([2, 3]).Matmul(Tensor.Zeros([4, 5])), "Matmul: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
        ["index_select out of range"] = (() => Tensor.Zeros([2, 3]).IndexSelect(1, Tensor.FromArray(new long[] { 5 })), "IndexSelect: INDICES element is out of DATA bounds, id=5 axis_dim=3"),
        ["embedding id out of range"] = (() => Functional.Embedding(Tensor.Zeros([4, 2]), Tensor.FromArray(new long[] { 4 })), "embedding: index out of range in self"),
        ["gather index out of range"] = (() => Tensor.Zeros([2, 3]).Gather(1, Tensor.FromArray(new long[] { 0, 9 }, 2, 1)), "Gather: index 9 is out of bounds for dimension 1 with size 3"),
        ["view of wrong size"] = (() => Tensor.Zeros([2, 3]).View(7), "View: shape '[7]' is invalid for input of size 6"),
        ["cat of mismatched shapes"] = (() => Tensor.Cat([Tensor.Zeros([2, 3]), Tensor.Zeros([2, 4])], 0), "cat: Sizes of tensors must match except in dimension 0"),
        ["dimension out of range"] = (() => Tensor.Zeros([2, 3]).Softmax(5), "Softmax: Dimension out of range (expected to be in range of [-2, 1], but got 5)"),
        ["split dimension out of range"] = (() => Tensor.Zeros([2, 3]).Split(1, 4), "split: Dimension out of range"),
        ["item of many elements"] = (() => Tensor.Zeros([2, 3]).ToDouble(), "item: a Tensor with 6 elements cannot be converted to Scalar"),
        ["backward of non-scalar"] = (() =>
        {
            var x = Tensor.Ones([3]);
            x.RequiresGrad = true;
            (x * 2.0).Backward();
        }, "backward: grad can be implicitly created only for scalar outputs"),
        ["backward twice"] = (() =>
        {
            var x = Tensor.Ones([3]);
            x.RequiresGrad = true;
            var y = x.Exp().Sum();
            y.Backward();
            y.Backward();
        }, "backward: Trying to backward through the graph a second time"),
        ["backward without grad"] = (() => Tensor.Ones([1]).Sum().Backward(), "backward: element 0 of tensors does not require grad and does not have a grad_fn"),
        ["requires_grad on a non-leaf"] = (() =>
        {
            var x = Tensor.Ones([3]);
            x.RequiresGrad = true;
            (x * 2.0).RequiresGrad = false;
        }, "requires_grad_: you can only change requires_grad flags of leaf variables"),
        ["requires_grad on integers"] = (() => Tensor.Zeros([2], ScalarType.Int64).RequiresGrad = true, "requires_grad_: Only Tensors of floating point and complex dtype can require gradients"),
        ["multinomial of negative weights"] = (() => Tensor.FromArray(new[] { 0.5f, -1f }).Multinomial(1, false, null), "Multinomial: probability tensor contains either `inf`, `nan` or element < 0"),
        ["bytes do not match shape"] = (() => Tensor.FromArray(new float[] { 1, 2, 3 }, 2, 2), "from_bytes: byte count 12 does not match shape [2, 2] of dtype Float (16 bytes)"),
        ["negative dimension"] = (() => Tensor.FromArray(new float[] { 1 }, -1), "from_bytes: negative dimension -1"),
        ["shape overflowing int64 bytes, no allocation"] = (() => Tensor.FromArray(new float[] { 1 }, Huge), "from_bytes: shape [1099511627776, 1099511627776] overflows int64 bytes"),
        ["huge shape with few bytes, no allocation"] = (() => Tensor.FromArray(new float[] { 1 }, 1L << 40), "from_bytes: byte count 4 does not match shape [1099511627776]"),
        ["dropout probability"] = (() => Functional.Dropout(Tensor.Ones([2]), 1.5, training: true, null), "dropout: dropout probability must be in [0, 1), got 1.5"),
        ["generator state of wrong size"] = (() =>
        {
            using var g = new Generator(1);
            g.SetState(Tensor.Zeros([3], ScalarType.UInt8));
        }, "generator.set_state"),
        ["reshape of wrong size"] = (() => Tensor.Zeros([2, 3]).Reshape(-1, 4), "Reshape: shape '[-1, 4]' is invalid for input of size 6"),
        ["clamp without bounds"] = (() => Tensor.Ones([2]).Clamp(), "Clamp: torch.clamp: At least one of 'min' or 'max' must not be None"),
    };

    public static TheoryData<string> Names => new(Failures.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Native_failure_is_a_TorchException_with_libtorchs_message_and_the_next_call_works(string name)
    {
        using var scope = DisposeScope.Enter();
        var (fail, message) = Failures[name];
        var e = Assert.Throws<TorchException>(fail);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("Exception raised from", e.Message);  // libtorch's C++ backtrace is left out

        // The same thread carries on as if nothing happened.
        using var a = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, a.Matmul(a).ToArray<float>());
    }

    [Fact]
    public void The_exception_carries_the_operation_and_libtorchs_message_separately()
    {
        using var scope = DisposeScope.Enter();
        var e = Assert.Throws<TorchException>(() => Tensor.Zeros([2, 3]).Matmul(Tensor.Zeros([4, 5])));
        Assert.Equal("Matmul", e.Operation);
        Assert.Equal("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", e.NativeMessage);
        Assert.Equal("Matmul: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", e.Message);
    }

    [Fact]
    public void Thousands_of_errors_in_a_row_leave_the_process_working()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([4, 5]);
        for (var i = 0; i < 5000; i++)
        {
            var e = Assert.Throws<TorchException>(() => a.Matmul(b));
            Assert.Contains("cannot be multiplied", e.Message);
            using var scope = DisposeScope.Enter();
            Assert.Equal(6.0, (a + 1.0).Sum().ToDouble());
        }
    }

    [Fact]
    public async Task Errors_on_two_threads_at_once_keep_their_own_messages()
    {
        // If the last-error slot were shared, one thread would sooner or later read the other's message.
        using var start = new Barrier(2);
        Task Run(Action fail, string own, string other) => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 3000; i++)
            {
                using var scope = DisposeScope.Enter();
                var e = Assert.Throws<TorchException>(fail);
                Assert.Contains(own, e.Message);
                Assert.DoesNotContain(other, e.Message);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        await Task.WhenAll(
            Run(() => Tensor.Zeros([2, 3]).Matmul(Tensor.Zeros([4, 5])), "cannot be multiplied", "out of range"),
            Run(() => Tensor.Zeros([2, 3]).IndexSelect(0, Tensor.FromArray(new long[] { 9 })), "index out of range in self", "cannot be multiplied"));
    }

    [Fact]
    public void Using_a_disposed_tensor_is_an_ObjectDisposedException_not_a_crash()
    {
        using var scope = DisposeScope.Enter();
        var t = Tensor.Ones([2]);
        t.Dispose();
        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => t.Exp());
        Assert.Throws<ObjectDisposedException>(() => Functional.Linear(Tensor.Ones([1, 2]), Tensor.Ones([2, 2]), t));
        Assert.Throws<ObjectDisposedException>(() => t.Shape);
        Assert.Equal("Tensor(disposed)", t.ToString());
        t.Dispose();  // twice is fine
    }
}
