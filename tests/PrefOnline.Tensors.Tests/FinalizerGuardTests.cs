using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests;

/// <summary>
/// The finalizer guard (src/PrefOnline.Tensors/native/finalizer_guard.c): TorchSharp's disposals go through
/// it, what the finalizer thread disposes waits in its queue, and a queued handle is freed only after it has
/// survived two sweeps. The end-to-end proof under load is tests/PrefOnline.Learning.Tests/Stress.
/// </summary>
public sealed class FinalizerGuardTests
{
    private static readonly TimeSpan ReaperTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public unsafe void The_guard_is_mapped_and_its_load_check_passes()
    {
        TorchEngine.EnsureLoaded();
        var maps = File.ReadAllText("/proc/self/maps");
        Assert.Contains(Path.Combine(AppContext.BaseDirectory, FinalizerGuard.LibraryFileName), maps, StringComparison.Ordinal);
        Assert.Equal(1, Export<int>("prefonline_guard_finalizer_thread_marked")());
        Assert.Equal(IntPtr.Zero, Export<IntPtr>("prefonline_guard_load_error")());
    }

    [Fact]
    public void Disposing_on_this_thread_frees_at_once()
    {
        TorchEngine.EnsureLoaded();
        var freed = FinalizerGuard.FreedDirectly;
        using (var scope = NewDisposeScope())
        {
            _ = ones(3);
            _ = zeros(2);
        }
        using (var scalar = 2.5.ToScalar()) { }
        Assert.True(FinalizerGuard.FreedDirectly >= freed + 3, $"direct frees went from {freed} to {FinalizerGuard.FreedDirectly}");
    }

    [Fact]
    public async Task A_dropped_scalar_and_tensor_are_queued_by_the_finalizer_and_freed_by_the_reaper_after_two_seconds()
    {
        TorchEngine.EnsureLoaded();
        var queuedBefore = FinalizerGuard.Queued;
        DropScalarAndTensor();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var clock = Stopwatch.StartNew();
        var queuedAfter = FinalizerGuard.Queued;
        Assert.True(queuedAfter >= queuedBefore + 2, $"the finalizer queued {queuedAfter - queuedBefore} handles, expected the Scalar and the Tensor");

        // Handles are freed in the order of their sweep count, so once as many were freed as had been
        // queued by now, ours were.
        while (FinalizerGuard.FreedFromQueue < queuedAfter)
        {
            Assert.True(clock.Elapsed < ReaperTimeout, $"the reaper freed {FinalizerGuard.FreedFromQueue} of {queuedAfter} queued handles in {ReaperTimeout}");
            await Task.Delay(50);
        }
        // Queued between sweeps q and q+1, freed at sweep q+3: at least two whole 1 s intervals later.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.95), $"freed after {clock.Elapsed.TotalSeconds:F2} s, before its grace");
    }

    [Fact]
    public unsafe void A_handle_the_finalizer_thread_disposes_survives_two_sweeps_and_is_freed_at_the_third()
    {
        TorchEngine.EnsureLoaded();
        var setAutomaticSweeps = (delegate* unmanaged<int, void>)NativeLibrary.GetExport(FinalizerGuard.Handle, "prefonline_guard_set_automatic_sweeps");
        var sweep = Export<ulong>("prefonline_guard_sweep");
        var isPending = Export<IntPtr, int>("prefonline_guard_is_pending");
        // A native Scalar no managed wrapper owns, made by TorchSharp's own function found through the guard.
        var makeScalar = (delegate* unmanaged<long, IntPtr>)NativeLibrary.GetExport(FinalizerGuard.Handle, "THSTorch_int64_to_scalar");
        var handle = makeScalar(42);
        setAutomaticSweeps(0);
        try
        {
            var freedBefore = FinalizerGuard.FreedFromQueue;
            DisposeAsIfOnTheFinalizerThread(handle);
            Assert.Equal(1, isPending(handle));
            sweep();
            Assert.Equal(1, isPending(handle));
            sweep();
            Assert.Equal(1, isPending(handle));
            sweep();
            Assert.Equal(0, isPending(handle));
            Assert.True(FinalizerGuard.FreedFromQueue >= freedBefore + 1);
        }
        finally
        {
            setAutomaticSweeps(1);
        }
    }

    [Fact]
    public unsafe void Drain_frees_a_queued_handle_at_once()
    {
        TorchEngine.EnsureLoaded();
        var isPending = Export<IntPtr, int>("prefonline_guard_is_pending");
        var makeScalar = (delegate* unmanaged<long, IntPtr>)NativeLibrary.GetExport(FinalizerGuard.Handle, "THSTorch_int64_to_scalar");
        var handle = makeScalar(7);
        DisposeAsIfOnTheFinalizerThread(handle);
        Assert.Equal(1, isPending(handle));
        Assert.True(FinalizerGuard.Drain() >= 1);
        Assert.Equal(0, isPending(handle));
    }

    /// <summary>Disposes through the guard on a fresh thread marked as the finalizer thread (the mark is
    /// per thread, so the test's own thread stays unmarked).</summary>
    private static unsafe void DisposeAsIfOnTheFinalizerThread(IntPtr scalarHandle)
    {
        var thread = new Thread(() =>
        {
            ((delegate* unmanaged<void>)NativeLibrary.GetExport(FinalizerGuard.Handle, "prefonline_guard_mark_finalizer_thread"))();
            ((delegate* unmanaged<IntPtr, void>)NativeLibrary.GetExport(FinalizerGuard.Handle, "THSTorch_dispose_scalar"))(scalarHandle);
        });
        thread.Start();
        thread.Join();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropScalarAndTensor()
    {
        _ = 3.ToScalar();
        _ = ones(2);
    }

    private static unsafe delegate* unmanaged<T> Export<T>(string name) where T : unmanaged =>
        (delegate* unmanaged<T>)NativeLibrary.GetExport(FinalizerGuard.Handle, name);

    private static unsafe delegate* unmanaged<TArgument, TResult> Export<TArgument, TResult>(string name) where TArgument : unmanaged where TResult : unmanaged =>
        (delegate* unmanaged<TArgument, TResult>)NativeLibrary.GetExport(FinalizerGuard.Handle, name);
}
