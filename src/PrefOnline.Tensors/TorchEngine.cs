using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace PrefOnline.Tensors;

/// <summary>
/// Loads TorchSharp's native backend once, with a failure that says what to do, and reports what was
/// loaded. TorchSharp loads libLibTorchSharp.so lazily from the first tensor operation, and its own
/// failure is a TypeInitializationException with a page-long trace; the worker calls
/// <see cref="EnsureLoaded"/> at start so that a broken install is one clear line before anything runs.
/// Loading goes through <see cref="FinalizerGuard"/> (TorchSharp's finalizers must not free what a native call
/// still reads) and fails unless the guard is active.
/// </summary>
public static class TorchEngine
{
    private const string NativeLibraryName = "libLibTorchSharp.so";

    private static readonly Lazy<Exception?> LoadError = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Throws <see cref="TorchEngineException"/> when the native backend cannot be loaded.</summary>
    public static void EnsureLoaded()
    {
        if (LoadError.Value is { } error) throw new TorchEngineException(Explain(error), error);
    }

    /// <summary>
    /// Sets libtorch's intra-op thread count (torch.set_num_threads) for the calling thread's kernels.
    /// libtorch's OpenMP backend keeps the count per OS thread once a thread has used it, which is one
    /// more reason all tensor work runs on one <see cref="TensorThread"/>: it calls this once, at start.
    /// </summary>
    public static void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        EnsureLoaded();
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
    }

    /// <summary>libtorch's intra-op thread count in effect on the calling thread.</summary>
    public static int Threads
    {
        get
        {
            EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>The LibTorch release TorchSharp was built against (e.g. 2.10.0).</summary>
    public static string LibTorchVersion => Version.TryParse(torch.__version__, out var v) ? v.ToString(3) : torch.__version__;

    /// <summary>The TorchBackend this build was made with: <c>cpu</c> (TorchSharp-cpu) or <c>cuda</c>
    /// (TorchSharp-cuda-linux). See Directory.Build.props.</summary>
    public static string Backend { get; } =
        typeof(TorchEngine).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";

    /// <summary>The TorchSharp assembly's version (e.g. 0.107.0).</summary>
    public static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    /// <summary>The file of libLibTorchSharp.so (or of another library, by file name) this process mapped
    /// (from /proc/self/maps), or null before loading or where /proc is missing.</summary>
    public static string? LoadedNativeLibrary(string fileName = NativeLibraryName)
    {
        try
        {
            return File.ReadLines("/proc/self/maps")
                .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
                .Where(fields => fields.Length == 6)
                .Select(fields => fields[5].Trim())
                .FirstOrDefault(path => Path.GetFileName(path) == fileName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static Exception? TryLoad()
    {
        try
        {
            FinalizerGuard.Install();
            torch.InitializeDeviceType(DeviceType.CPU);
            FinalizerGuard.VerifyActive();
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException or ExternalException or InvalidOperationException)
        {
            return e;
        }
    }

    private static string Explain(Exception error)
    {
        var root = error;
        while (root.InnerException is not null) root = root.InnerException;
        var firstLine = root.Message.Split('\n', 2)[0].Trim();
        var glibcxx = root.Message.Contains("GLIBCXX", StringComparison.Ordinal)
            ? " The system libstdc++ is older than the one TorchSharp was built with; the build patches the copy in its output "
              + "(build/TorchSharp.targets): run the binary from a `dotnet build`/`dotnet publish` output, not from a copy of the NuGet package."
            : "";
        if (root.Message.Contains(FinalizerGuard.LibraryFileName, StringComparison.Ordinal))
            return $"TorchSharp {TorchSharpVersion} cannot run guarded: {firstLine}.";
        return $"TorchSharp {TorchSharpVersion} could not load its native library {NativeLibraryName} (LibTorch {LibTorchVersion}) from {AppContext.BaseDirectory}: {firstLine}.{glibcxx}";
    }
}

/// <summary>The tensor engine cannot start; the message is one line that names the cause.</summary>
public sealed class TorchEngineException(string message, Exception inner) : Exception(message, inner);
