using System.CommandLine;
using System.Reflection;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary><c>prefonline info</c>: versions and what the machine gives (threads, CUDA, GEMM speed).</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print versions, device availability and a GEMM speed check.");
        command.SetAction((_, ct) => CliAction.RunAsync(async token =>
        {
            using var thread = new TensorThread("tensor");
            var (threads, cuda, gflops, library, guard) = await thread.RunAsync(
                () => (TorchEngine.Threads, new TensorPlacement("cuda", "float32").Problem(), GemmProbe.MeasureGflops(n: 512, repeats: 3),
                       TorchEngine.LoadedNativeLibrary(), TorchEngine.LoadedNativeLibrary(FinalizerGuard.LibraryFileName)), token);
            var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";
            Console.WriteLine($"prefonline {version}");
            Console.WriteLine($"torchsharp {TorchEngine.TorchSharpVersion} ({TorchEngine.Backend} build), libtorch {TorchEngine.LibTorchVersion}, intra-op threads: {threads}");
            Console.WriteLine($"native     {library ?? "not mapped"}");
            Console.WriteLine($"guard      {guard ?? "not mapped"} (what the .NET finalizer releases is freed 2-3 s later; {FinalizerGuard.Queued} so far)");
            Console.WriteLine($"cuda       {cuda ?? "available"}");
            Console.WriteLine($"gemm       {gflops:F1} GFLOP/s fp32 (512³)");
            return 0;
        }, ct));
        return command;
    }
}
