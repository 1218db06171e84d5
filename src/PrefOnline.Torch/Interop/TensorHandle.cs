using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

/// <summary>
/// An owned <c>at::Tensor*</c> from the shim. SafeHandle gives two guarantees we rely on: a handle in
/// use by a native call cannot be released underneath it, and a handle that was never disposed is
/// still freed (by the critical finalizer) rather than leaked forever.
/// </summary>
internal sealed class TensorHandle : SafeHandle
{
    public TensorHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public TensorHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.pt_free(handle);
        return true;
    }
}
