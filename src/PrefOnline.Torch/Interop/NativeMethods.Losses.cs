using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

// Exports of native/losses.cpp.
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)] internal static partial IntPtr pt_mse_loss(TensorHandle input, TensorHandle target);
}
