using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

/// <summary>
/// A seedable libtorch random generator (Mersenne Twister on CPU). Every random draw that must be
/// reproducible takes one explicitly: a seeded run samples the same tokens, dropout masks and inits.
/// </summary>
/// <remarks>
/// Deliberately without a finalizer: generators are long-lived fields, and freeing one from the
/// finalizer thread while a draw is in flight would be a use-after-free. Dispose it with its owner.
/// </remarks>
public sealed class Generator : IDisposable
{
    private IntPtr raw;

    public Generator(ulong seed)
    {
        raw = NativeMethods.pt_generator_new(seed);
        if (raw == IntPtr.Zero) throw TorchException.FromLastError("generator");
        Seed = seed;
    }

    public ulong Seed { get; private set; }

    public void SetSeed(ulong seed)
    {
        Tensor.Check(NativeMethods.pt_generator_set_seed(Live, seed), "generator.manual_seed");
        Seed = seed;
    }

    /// <summary>The full generator state as a uint8 tensor (for checkpoints).</summary>
    public Tensor GetState() => new(NativeMethods.pt_generator_get_state(Live), "generator.get_state");

    public void SetState(Tensor state) => Tensor.Check(NativeMethods.pt_generator_set_state(Live, state.Handle), "generator.set_state");

    internal static IntPtr Raw(Generator? generator) => generator is null ? IntPtr.Zero : generator.Live;

    private IntPtr Live => raw != IntPtr.Zero ? raw : throw new ObjectDisposedException(nameof(Generator));

    public void Dispose()
    {
        if (raw == IntPtr.Zero) return;
        NativeMethods.pt_generator_free(raw);
        raw = IntPtr.Zero;
    }
}
