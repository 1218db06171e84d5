using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

/// <summary>
/// An owned native <c>gpt2::Decoder*</c>. As with <see cref="TensorHandle"/>, a call in flight keeps
/// it alive, and a decoder that was never disposed is still freed by the critical finalizer (it holds
/// references to the model's weight storage, so a leak would pin the whole model in memory).
/// </summary>
internal sealed class DecoderHandle : SafeHandle
{
    public DecoderHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public DecoderHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.pt_gpt2_decoder_free(handle);
        return true;
    }
}
