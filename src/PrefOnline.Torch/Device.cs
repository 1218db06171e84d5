using System.Globalization;

namespace PrefOnline.Torch;

/// <summary>
/// Where tensors live. "cpu" always works; "cuda" / "cuda:N" works with a CUDA build of libtorch and
/// fails with a clear message on Debian's CPU-only build (see <see cref="EnsureAvailable"/>). Every
/// creation and move of a tensor goes through <see cref="EnsureAvailable"/>, so the CUDA code path is
/// the same one a CUDA build would take.
/// </summary>
public readonly record struct Device(DeviceKind Kind, int Index)
{
    /// <summary>CUDA ordinals are int8 in libtorch (c10::DeviceIndex).</summary>
    public const int MaxCudaIndex = sbyte.MaxValue;

    public static readonly Device Cpu = new(DeviceKind.Cpu, -1);

    public static Device Cuda(int index = 0)
    {
        if (index < 0 || index > MaxCudaIndex)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"a CUDA device index is between 0 and {MaxCudaIndex}");
        return new Device(DeviceKind.Cuda, index);
    }

    /// <summary>The native encoding: -1 for CPU, the CUDA ordinal otherwise ("cuda" without an index is 0).</summary>
    internal int NativeId => Kind == DeviceKind.Cpu ? -1 : Math.Max(Index, 0);

    public bool IsCpu => Kind == DeviceKind.Cpu;

    /// <summary>Parses "cpu", "cuda" or "cuda:N" (case-insensitive, as torch.device does).</summary>
    public static Device Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim().ToLowerInvariant();
        if (s == "cpu") return Cpu;
        if (s == "cuda") return Cuda(0);
        if (s.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(s.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var i)
            && i <= MaxCudaIndex)
            return Cuda(i);
        throw new FormatException($"unknown device '{text}': use cpu, cuda or cuda:N (N from 0 to {MaxCudaIndex})");
    }

    public static bool TryParse(string? text, out Device device)
    {
        device = Cpu;
        if (text is null) return false;
        try
        {
            device = Parse(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Throws when this device cannot be used by the loaded libtorch; returns it otherwise.</summary>
    public Device EnsureAvailable()
    {
        if (Kind == DeviceKind.Cuda && !TorchRuntime.CudaAvailable)
            throw new TorchException(
                $"device '{this}' requested, but the loaded libtorch {TorchRuntime.Version} has no CUDA support " +
                "(Debian's libtorch-dev is CPU-only). Use device cpu, or build the shim against a CUDA build of libtorch.");
        return this;
    }

    public override string ToString() => Kind == DeviceKind.Cpu ? "cpu" : $"cuda:{Math.Max(Index, 0)}";
}
