using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

// Exports of native/optim_fused.cpp.
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)] internal static partial int pt_adamw_step_fused(IntPtr* parameters, IntPtr* expAvg, IntPtr* expAvgSq, long* steps, int n, double lr, double beta1, double beta2, double eps, double weightDecay);
}
