using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Support;

/// <summary>Live TorchSharp tensors of the process (TorchSharp's own count of undisposed Tensor objects),
/// after the finalizers of unreachable ones have run. Tests that read it run in <see cref="SerialCollection"/>.</summary>
internal static class LiveTensors
{
    public static long Count
    {
        get
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return Tensor.TotalCount;
        }
    }
}
