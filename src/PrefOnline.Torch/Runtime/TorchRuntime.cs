using System.Runtime.InteropServices;
using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

/// <summary>Process-wide facts and settings of the loaded libtorch.</summary>
public static class TorchRuntime
{
    public static string Version => Marshal.PtrToStringUTF8(NativeMethods.pt_version()) ?? "unknown";

    public static bool CudaAvailable => NativeMethods.pt_cuda_is_available() != 0;

    /// <summary>Tensors alive in native memory right now (every handle not yet freed).</summary>
    public static long LiveTensors => NativeMethods.pt_live_handles();

    /// <summary>Intra-op threads for ops run on the calling thread (OpenMP's setting is per OS thread,
    /// which is why all tensor work runs on one <see cref="TensorThread"/>).</summary>
    public static int NumThreads
    {
        get => NativeMethods.pt_get_num_threads();
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "thread count must be at least 1");
            Tensor.Check(NativeMethods.pt_set_num_threads(value), "set_num_threads");
        }
    }

    /// <summary>Seeds libtorch's global generator (used only where no explicit generator is passed).</summary>
    public static void ManualSeed(ulong seed) => NativeMethods.pt_manual_seed(seed);
}
