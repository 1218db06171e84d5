using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors;

/// <summary>
/// Where a model's tensors live and in which floating-point precision: the configuration's
/// <c>Model:Device</c> (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) and <c>Model:Dtype</c> (<c>float32</c>,
/// <c>bfloat16</c>). Parameters, optimizer state, the reference and reward models and sampling all
/// follow it; integer tensors (token ids, masks) keep their own dtype and only follow the device.
/// </summary>
public sealed record TensorPlacement
{
    /// <summary>The dtype names configuration accepts, in the order documented.</summary>
    public static readonly IReadOnlyList<string> DtypeNames = ["float32", "bfloat16"];

    public TensorPlacement(string device, string dtype)
    {
        DeviceName = CanonicalDevice(device);
        Dtype = ParseDtype(dtype);
    }

    /// <summary>CPU, float32: the default, and what tests and the embedded demo use.</summary>
    public static TensorPlacement Cpu { get; } = new("cpu", "float32");

    /// <summary>The canonical device text: <c>cpu</c> or <c>cuda:N</c>.</summary>
    public string DeviceName { get; }

    public ScalarType Dtype { get; }

    public bool IsCpu => DeviceName == "cpu";

    /// <summary>The TorchSharp device. Creating it needs no CUDA; putting a tensor on it does (check
    /// <see cref="Problem"/> first).</summary>
    public Device Device => new(DeviceName);

    public string DtypeName => DtypeText(Dtype);

    /// <summary>Why this placement cannot be used by the loaded libtorch, or null when it can.</summary>
    public string? Problem()
    {
        if (IsCpu) return null;
        if (TorchEngine.Backend != "cuda")
            return $"'{DeviceName}' needs a CUDA build of the tensor engine; this one is TorchSharp-{TorchEngine.Backend} " +
                   "(build with -p:TorchBackend=cuda, or use the GPU image)";
        if (!cuda.is_available()) return $"'{DeviceName}' requested, but no CUDA device is visible to this process";
        var index = Device.index < 0 ? 0 : Device.index;
        var count = cuda.device_count();
        return index < count ? null : $"'{DeviceName}' requested, but this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})";
    }

    /// <summary>This placement, or an <see cref="InvalidOperationException"/> saying why it cannot be used.</summary>
    public TensorPlacement EnsureAvailable() =>
        Problem() is { } problem ? throw new InvalidOperationException(problem) : this;

    public override string ToString() => $"{DeviceName} {DtypeName}";

    /// <summary>"cpu", "cuda" or "cuda:N" (case-insensitive, as torch.device reads them) → "cpu" or "cuda:N".</summary>
    public static string CanonicalDevice(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim().ToLowerInvariant();
        if (s == "cpu") return "cpu";
        if (s == "cuda") return "cuda:0";
        if (s.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(s.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index <= sbyte.MaxValue)
            return $"cuda:{index}";
        throw new FormatException($"unknown device '{text}': use cpu, cuda or cuda:N (N from 0 to {sbyte.MaxValue})");
    }

    /// <summary>"float32" or "bfloat16" (case-insensitive).</summary>
    public static ScalarType ParseDtype(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "float32" => ScalarType.Float32,
            "bfloat16" => ScalarType.BFloat16,
            _ => throw new FormatException($"unknown dtype '{text}': use {string.Join(" or ", DtypeNames)}"),
        };
    }

    /// <summary>The configuration name of a floating-point dtype (float16 and float64 too, for messages).</summary>
    public static string DtypeText(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => dtype.ToString().ToLowerInvariant(),
    };
}
