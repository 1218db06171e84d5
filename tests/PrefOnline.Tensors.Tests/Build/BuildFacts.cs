using System.Reflection;

namespace PrefOnline.Tensors.Tests.Build;

/// <summary>Paths the build tests need: the repository, the restored TorchSharp package, this test's output.</summary>
internal static class BuildFacts
{
    public const string TorchSharpVersion = "0.107.0";

    /// <summary>The libtorch-cpu-linux-x64 package TorchSharp-cpu 0.107.0 depends on.</summary>
    public const string LibTorchVersion = "2.10.0";

    public static string RepositoryRoot { get; } = FindRoot();

    public static string NuGetPackageRoot { get; } =
        typeof(BuildFacts).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "NuGetPackageRoot").Value
        ?? throw new InvalidOperationException("the NuGetPackageRoot assembly metadata is missing");

    /// <summary>libLibTorchSharp.so as restored (must never be modified).</summary>
    public static string PackagedLibTorchSharp =>
        Path.Combine(NuGetPackageRoot, "torchsharp", TorchSharpVersion, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    /// <summary>The copy in this test's output directory, which the build patched where needed.</summary>
    public static string OutputLibTorchSharp => Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");

    /// <summary>LibTorch's libtorch_cpu.so as restored (must never be modified).</summary>
    public static string PackagedLibTorchCpu =>
        Path.Combine(NuGetPackageRoot, "libtorch-cpu-linux-x64", LibTorchVersion, "runtimes", "linux-x64", "native", "libtorch_cpu.so");

    /// <summary>The copy in this test's output directory, whose MKL vendor check the build patched.</summary>
    public static string OutputLibTorchCpu => Path.Combine(AppContext.BaseDirectory, "libtorch_cpu.so");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PrefOnline.sln"))) return dir.FullName;
        throw new InvalidOperationException($"PrefOnline.sln not found above {AppContext.BaseDirectory}");
    }
}
