namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// The real-binary tests: each starts several processes that each want a core, so they run one at a time
/// and not beside other test collections (DisableParallelization).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection
{
    public const string Name = "real binary processes";
}
