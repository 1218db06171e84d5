namespace PrefOnline.Kernels;

/// <summary>
/// A failure reported by the native kernels, with their message: a weight of the wrong shape
/// ("h.0.attn.c_attn.weight has shape [96, 32], expected [32, 96]"), an invalid request ("top_p 1.5
/// must be in (0, 1]"), non-finite logits. The decoder stays usable after one.
/// </summary>
public sealed class KernelException : Exception
{
    public KernelException(string message) : base(message) { }

    internal static KernelException FromLastError(string operation) => new($"{operation}: {Interop.NativeMethods.LastError()}");
}
