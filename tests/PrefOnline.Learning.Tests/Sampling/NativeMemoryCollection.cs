namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>Tests that compare process-wide native counts (live tensors, RSS) before and after: they
/// must not run beside other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeMemoryCollection
{
    public const string Name = "native memory";
}
