using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

// Exports of native/batched_matmul.cpp.
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)] internal static partial IntPtr pt_baddbmm(TensorHandle input, TensorHandle batch1, TensorHandle batch2, double beta, double alpha);
    [LibraryImport(Lib)] internal static partial IntPtr pt_bmm(TensorHandle batch1, TensorHandle batch2);
}
