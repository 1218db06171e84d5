using System.Runtime.InteropServices;

namespace PrefOnline.Torch;

/// <summary>
/// An error raised inside libtorch, carried across the C ABI with libtorch's own message (without
/// its C++ backtrace), prefixed with the operation: "Matmul: mat1 and mat2 shapes cannot be
/// multiplied (2x3 and 4x5)". Also used for device availability errors detected before the call.
/// </summary>
public sealed class TorchException : Exception
{
    public TorchException(string message) : base(message) { }

    private TorchException(string operation, string nativeMessage) : base($"{operation}: {nativeMessage}")
    {
        Operation = operation;
        NativeMessage = nativeMessage;
    }

    /// <summary>The bridge operation that failed (e.g. "Matmul"), when the error came from a native call.</summary>
    public string? Operation { get; }

    /// <summary>libtorch's message alone, when the error came from a native call.</summary>
    public string? NativeMessage { get; }

    /// <summary>Reads the message the shim stored for this thread's last failed call. Must run on the
    /// thread that made the call, right after it (the message is thread-local).</summary>
    internal static TorchException FromLastError(string operation)
    {
        var message = Marshal.PtrToStringUTF8(Interop.NativeMethods.pt_last_error());
        if (string.IsNullOrEmpty(message)) message = "unknown native error";
        return new TorchException(operation, message.Trim());
    }
}
