using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

// Exports of native/parameters.cpp.
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)] internal static partial int pt_set_data(TensorHandle target, TensorHandle source);
}
