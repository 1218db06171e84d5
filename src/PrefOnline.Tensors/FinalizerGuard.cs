using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace PrefOnline.Tensors;

/// <summary>
/// Puts libPrefOnlineFinalizerGuard.so (native/finalizer_guard.c) between TorchSharp and libLibTorchSharp.so,
/// so that the .NET finalizer thread never frees a Scalar, Tensor or Generator that a native call in flight
/// may still read: TorchSharp's finalizers free through raw handles, and a Scalar made for one call (the
/// alpha of <c>a + b</c>, <c>t.mul_(0.9)</c>, its own AdamW) is unreachable while libtorch reads it. The
/// guard queues what the finalizer thread disposes and frees it 2-3 s later; disposal on any other thread
/// is immediate. The header of finalizer_guard.c gives the reasoning; docs/OPERATIONS.md the operations view.
/// </summary>
/// <remarks>
/// <see cref="Install"/> must run before TorchSharp binds its first P/Invoke: every assembly of ours that
/// uses TorchSharp calls it from a module initializer (it only registers the resolver; the library is
/// loaded when TorchSharp first asks for it). <see cref="TorchEngine.EnsureLoaded"/> then checks that
/// disposals really reach the guard and fails otherwise: the process never runs unguarded.
/// </remarks>
public static unsafe class FinalizerGuard
{
    public const string LibraryFileName = "libPrefOnlineFinalizerGuard.so";

    private const string TorchSharpLibraryName = "LibTorchSharp";

    private static readonly Lock InstallLock = new();
    private static bool resolverRegistered;
    private static readonly Lazy<IntPtr> Library = new(LoadAndMarkFinalizerThread, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Makes TorchSharp's DllImport of LibTorchSharp resolve to the guard. Idempotent, cheap
    /// (nothing is loaded until TorchSharp's first native call).</summary>
    public static void Install()
    {
        lock (InstallLock)
        {
            if (resolverRegistered) return;
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
            resolverRegistered = true;
        }
    }

    /// <summary>The guard's handle (loads it and marks the finalizer thread on first use); throws
    /// <see cref="DllNotFoundException"/> with the cause when it cannot be loaded.</summary>
    public static IntPtr Handle => Library.Value;

    /// <summary>True once TorchSharp's first native call has loaded the guard.</summary>
    public static bool IsLoaded => Library.IsValueCreated;

    /// <summary>Handles the finalizer thread has queued since start.</summary>
    public static ulong Queued => Call<ulong>("prefonline_guard_queued");

    /// <summary>Queued handles freed since start (after their grace, or by <see cref="Drain"/>).</summary>
    public static ulong FreedFromQueue => Call<ulong>("prefonline_guard_freed_from_queue");

    /// <summary>Handles disposed on other threads (Dispose, dispose scopes), freed at once.</summary>
    public static ulong FreedDirectly => Call<ulong>("prefonline_guard_freed_directly");

    /// <summary>Handles waiting for their grace to pass.</summary>
    public static ulong Pending => Call<ulong>("prefonline_guard_pending");

    /// <summary>Frees every queued handle now. Only when no thread can be inside a TorchSharp call
    /// (tests, the end of a process); returns how many it freed.</summary>
    public static ulong Drain() => Call<ulong>("prefonline_guard_drain");

    /// <summary>Throws unless TorchSharp's disposals reach the guard: disposes a fresh Scalar on this
    /// thread and requires the guard's count of direct frees to move. Called by TorchEngine after loading.</summary>
    internal static void VerifyActive()
    {
        var before = FreedDirectly;
        using (1.ToScalar()) { }
        if (FreedDirectly == before)
            throw new InvalidOperationException(
                $"TorchSharp's disposals do not reach {LibraryFileName}: TorchSharp was used before {nameof(FinalizerGuard)}.{nameof(Install)} "
                + "registered its resolver (every assembly that uses TorchSharp must call it from a module initializer)");
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == TorchSharpLibraryName ? Library.Value : IntPtr.Zero;

    private static IntPtr LoadAndMarkFinalizerThread()
    {
        var path = Path.Combine(Path.GetDirectoryName(typeof(FinalizerGuard).Assembly.Location) is { Length: > 0 } directory ? directory : AppContext.BaseDirectory, LibraryFileName);
        if (!NativeLibrary.TryLoad(path, out var handle))
        {
            // Load again to get the loader's reason (a missing file, an unresolved libLibTorchSharp.so).
            string reason;
            try
            {
                NativeLibrary.Load(path);
                reason = "unknown";
            }
            catch (DllNotFoundException e)
            {
                // The runtime's message is a paragraph; the loader's own lines name the file and the cause.
                var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                reason = File.Exists(path) ? lines.FirstOrDefault(l => l.Contains(".so:", StringComparison.Ordinal)) ?? lines[0] : "no such file";
            }
            throw new DllNotFoundException($"the finalizer guard {path} could not be loaded ({reason}); TorchSharp will not run without it (build/publish output of PrefOnline.Tensors, gcc at build time)");
        }
        var loadError = ((delegate* unmanaged<IntPtr>)NativeLibrary.GetExport(handle, "prefonline_guard_load_error"))();
        if (loadError != IntPtr.Zero)
            throw new DllNotFoundException($"the finalizer guard {path} is broken: {Marshal.PtrToStringUTF8(loadError)}");

        MarkFinalizerThread(handle);
        if (((delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "prefonline_guard_finalizer_thread_marked"))() == 0)
            throw new DllNotFoundException($"the finalizer guard {path} could not mark the .NET finalizer thread");
        return handle;
    }

    /// <summary>The finalizer thread marks itself: a sentinel object with nothing pointing at it is collected
    /// and its finalizer calls the guard. Deterministic: a blocking full collection, then a wait for the
    /// finalizers. Runs before TorchSharp's first native call, so no TorchSharp object can be finalized yet.</summary>
    private static void MarkFinalizerThread(IntPtr handle)
    {
        DropSentinel((delegate* unmanaged<void>)NativeLibrary.GetExport(handle, "prefonline_guard_mark_finalizer_thread"));
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropSentinel(delegate* unmanaged<void> mark) => _ = new FinalizerThreadSentinel(mark);

    private static T Call<T>(string export) where T : unmanaged =>
        ((delegate* unmanaged<T>)NativeLibrary.GetExport(Handle, export))();

    private sealed class FinalizerThreadSentinel(delegate* unmanaged<void> mark)
    {
        private readonly delegate* unmanaged<void> mark = mark;

        ~FinalizerThreadSentinel() => mark();
    }
}
