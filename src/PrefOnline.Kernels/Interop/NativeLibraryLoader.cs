using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PrefOnline.Kernels.Interop;

/// <summary>
/// Finds libprefonline_kernels.so next to the managed assembly (where `dotnet build` copies it), so no
/// LD_LIBRARY_PATH is needed. The library depends on libc, libm and libstdc++ only.
/// </summary>
internal static class NativeLibraryLoader
{
    public const string LibraryName = "prefonline_kernels";
    private const string FileName = "libprefonline_kernels.so";

    // A library-level module initializer is exactly right here: the resolver must be in place before
    // the first P/Invoke of this assembly, whoever makes it.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraryLoader).Assembly, Resolve);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != LibraryName) return IntPtr.Zero;
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, FileName),
            Path.Combine(Path.GetDirectoryName(assembly.Location) ?? AppContext.BaseDirectory, FileName),
        };
        foreach (var path in candidates)
        {
            if (File.Exists(path)) return NativeLibrary.Load(path);
        }
        throw new DllNotFoundException(
            $"{FileName} was not found next to {assembly.GetName().Name} ({string.Join(", ", candidates)}). " +
            "It is built by `dotnet build` of PrefOnline.Kernels (needs cmake and g++).");
    }
}
