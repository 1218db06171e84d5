namespace PrefOnline.Streaming.Transport;

/// <summary>A transport operation failed. <see cref="IsTransient"/>: trying again later can succeed (broker down, timeout, open circuit).</summary>
public sealed class StreamingException(string message, bool isTransient, Exception? innerException = null) : Exception(message, innerException)
{
    public bool IsTransient { get; } = isTransient;
}
