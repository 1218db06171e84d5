namespace PrefOnline.Kernels;

/// <summary>
/// A float32 tensor the kernels read in place: the address of its first element and its shape.
/// The memory must be row-major, contiguous and in CPU memory (a CPU tensor's storage data pointer,
/// or memory the caller allocated).
/// </summary>
public readonly record struct KernelTensor(IntPtr Data, long[] Shape);

/// <summary>
/// Where a <see cref="FusedGpt2Decoder"/> finds the model's weights. It is asked at the start of
/// every decoder call, for every weight (Hugging Face names: <see cref="FusedGpt2Shape.WeightNames"/>),
/// and the decoder reads the memory in place during that call, so in-place updates (an optimizer
/// step) are seen by the next call and nothing is copied. The memory must stay valid and unchanged
/// until the call returns: ask for weights on the thread that owns the model's tensors (the tensor
/// thread), between updates.
/// </summary>
public interface IGpt2WeightSource
{
    /// <summary>The weight called <paramref name="name"/> (e.g. <c>h.0.attn.c_attn.weight</c>); throws
    /// <see cref="KeyNotFoundException"/> when the model has no such weight.</summary>
    KernelTensor Weight(string name);
}
