namespace PrefOnline.Torch.Tests.Decoding;

/// <summary>Tests that compare <see cref="TorchRuntime.LiveTensors"/> (a process-wide count) before and
/// after: they must not run beside tests that create tensors.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeMemoryCollection
{
    public const string Name = "native memory";
}
