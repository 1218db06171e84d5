namespace PrefOnline.Torch;

/// <summary>
/// Where tensors live. "cpu" always works; "cuda" / "cuda:N" works with a CUDA build of libtorch and
/// fails with a clear message on Debian's CPU-only build (see <see cref="EnsureAvailable"/>).
/// </summary>
public readonly record struct Device(DeviceKind Kind, int Index)
{
    public static readonly Device Cpu = new(DeviceKind.Cpu, -1);

    public static Device Cuda(int index = 0) => new(DeviceKind.Cuda, index);

    /// <summary>The native encoding: -1 for CPU, the CUDA ordinal otherwise.</summary>
    internal int NativeId => Kind == DeviceKind.Cpu ? -1 : Index;

    public static Device Parse(string text)
    {
        var s = text.Trim().ToLowerInvariant();
        if (s == "cpu") return Cpu;
        if (s == "cuda") return Cuda(0);
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out var i) && i >= 0) return Cuda(i);
        throw new ArgumentException($"unknown device '{text}': use cpu, cuda or cuda:N");
    }

    /// <summary>Throws when this device cannot be used by the loaded libtorch.</summary>
    public Device EnsureAvailable()
    {
        if (Kind == DeviceKind.Cuda && !TorchRuntime.CudaAvailable)
            throw new TorchException(
                $"device '{this}' requested, but the loaded libtorch {TorchRuntime.Version} has no CUDA support " +
                "(Debian's libtorch-dev is CPU-only). Use device cpu, or build the shim against a CUDA build of libtorch.");
        return this;
    }

    public override string ToString() => Kind == DeviceKind.Cpu ? "cpu" : $"cuda:{Index}";
}

public enum DeviceKind
{
    Cpu,
    Cuda,
}
