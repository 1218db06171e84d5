using Polly;
using Polly.Simmy;
using Polly.Simmy.Fault;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// A checkpoint volume that runs out of space, injected through the store's I/O pipeline: the production retry
/// strategy plus a Polly chaos strategy that fails version writes (<see cref="CheckpointIoOperations.WriteVersion"/>)
/// with the IOException .NET raises for ENOSPC (HResult 28, measured on a full tmpfs) while the volume is "full".
/// Full either by hand (<see cref="Full"/>) or, like a size-limited directory, while the store holds at least
/// <see cref="MaxVersions"/> version directories — so deleting versions makes room, as it would on disk.
/// Pointer moves and deletions are never failed: they need no new blocks (or free them).
/// </summary>
public sealed class SimulatedFullDisk
{
    private int refused;

    public SimulatedFullDisk(string root) => Root = root;

    public string Root { get; }

    /// <summary>Fail every version write (a volume filled by something else).</summary>
    public volatile bool Full;

    /// <summary>Fail version writes while this many versions are on disk (0: no limit).</summary>
    public volatile int MaxVersions;

    /// <summary>Version writes refused so far.</summary>
    public int Refused => Volatile.Read(ref refused);

    public ResiliencePipeline Pipeline(CheckpointOptions options) => new ResiliencePipelineBuilder()
        .AddRetry(CheckpointRetry.CreateStrategyOptions(options))
        .AddChaosFault(new ChaosFaultStrategyOptions
        {
            InjectionRate = 1,
            EnabledGenerator = args => ValueTask.FromResult(args.Context.OperationKey == CheckpointIoOperations.WriteVersion && IsFull()),
            FaultGenerator = _ =>
            {
                Interlocked.Increment(ref refused);
                return ValueTask.FromResult<Exception?>(new IOException($"No space left on device : '{Root}'", 28));
            },
        })
        .Build();

    private bool IsFull() => Full || (MaxVersions > 0 && new CheckpointReader(Root).ListVersions().Count >= MaxVersions);
}
