using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors;

/// <summary>
/// Checks a saved random-generator state before it is restored. TorchSharp's set_state export does not
/// catch libtorch's error, so a state of the wrong size would abort the process; a checkpoint is data,
/// and bad data must be an error, never a crash.
/// </summary>
public static class GeneratorState
{
    /// <summary>Why <paramref name="state"/> cannot be a CPU generator's state, or null when it can.</summary>
    public static string? Problem(Tensor state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var probe = new Generator(0);
        using var expected = probe.get_state();
        if (state.dtype != expected.dtype || !state.shape.SequenceEqual(expected.shape))
            return $"a CPU generator state is {expected.dtype} [{string.Join(", ", expected.shape)}], this one is {state.dtype} [{string.Join(", ", state.shape)}]";
        if (state.device.type != DeviceType.CPU) return $"a CPU generator state lives on the CPU, this one on {state.device}";
        return null;
    }
}
