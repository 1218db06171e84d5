namespace PrefOnline.Torch.Tests;

/// <summary>
/// Tests that measure the whole process (live native tensors, resident memory) run in this
/// collection: after every parallel test has finished, one at a time, so nothing else allocates
/// while they measure.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial: process-wide measurements";
}
