using System.Runtime.InteropServices;

namespace PrefOnline.Kernels.Interop;

/// <summary>An owned native decoder (its KV cache and scratch). A call in flight keeps it alive; one
/// that was never disposed is still freed by the critical finalizer.</summary>
internal sealed class DecoderHandle : SafeHandle
{
    public DecoderHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public DecoderHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.pk_gpt2_free(handle);
        return true;
    }
}
