using System.Runtime.InteropServices;

namespace PrefOnline.Torch;

/// <summary>An error raised inside libtorch, carried across the C ABI with libtorch's own message.</summary>
public sealed class TorchException : Exception
{
    public TorchException(string message) : base(message) { }

    /// <summary>Reads the message the shim stored for this thread's last failed call.</summary>
    internal static TorchException FromLastError(string operation)
    {
        var message = Marshal.PtrToStringUTF8(Interop.NativeMethods.pt_last_error());
        if (string.IsNullOrEmpty(message)) message = "unknown native error";
        // libtorch messages can span lines (the op's signature); the first line is what a reader needs first.
        return new TorchException($"{operation}: {message.Trim()}");
    }
}
