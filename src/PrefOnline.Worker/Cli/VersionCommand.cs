using System.CommandLine;
using System.Reflection;
using PrefOnline.Torch;

namespace PrefOnline.Worker.Cli;

/// <summary><c>prefonline info</c>: versions and what the machine gives (threads, CUDA, BLAS speed).</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print versions, device availability and a BLAS speed check.");
        command.SetAction((_, ct) => CliAction.RunAsync(async token =>
        {
            using var thread = new TensorThread("tensor");
            var (torch, cuda, threads, blas) = await thread.RunAsync(
                () => (TorchRuntime.Version, TorchRuntime.CudaAvailable, TorchRuntime.NumThreads, BlasProbe.Check()), token);
            var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";
            Console.WriteLine($"prefonline {version}");
            Console.WriteLine($"libtorch   {torch} (cuda: {(cuda ? "yes" : "no")}, intra-op threads: {threads})");
            Console.WriteLine($"blas       {blas.Library ?? "not mapped"} ({blas.Kind}): {blas.Gflops:F1} GFLOP/s fp32 GEMM");
            if (blas.Warning is not null) Console.WriteLine($"warning    {blas.Warning}");
            return 0;
        }, ct));
        return command;
    }
}
