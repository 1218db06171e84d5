using System.Globalization;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// /readyz's <c>checkpoints</c> check on the learner. Fails while checkpoints fail (a full volume, an I/O
/// error): the learner keeps learning in memory, but nothing new is durable, no offsets are committed and no
/// policy is published until a checkpoint succeeds again, which is what an operator must hear about. Passes
/// otherwise, naming the last checkpoint and, for the life of the process, any inconsistency the store had when
/// the learner loaded it (a pointer to a missing version, a fallback past refused versions, a repaired
/// <c>good</c>) and what the learner did about it.
/// Thread-safe: the learner writes, probes read.
/// </summary>
public sealed class CheckpointReadiness : IReadinessContributor
{
    private readonly Lock gate = new();
    private string? startNote;
    private string? failure;
    private long failures;
    private long? lastVersion;
    private DateTimeOffset? lastAt;

    public string Name => "checkpoints";

    /// <summary>True while the last checkpoint attempt failed.</summary>
    public bool Failing
    {
        get
        {
            lock (gate) return failure is not null;
        }
    }

    /// <summary>The store was inconsistent when loaded; <paramref name="note"/> says how and what was loaded instead (kept in the reason).</summary>
    public void StoreWasInconsistent(string note)
    {
        lock (gate) startNote = note;
    }

    /// <summary>A checkpoint was loaded or written.</summary>
    public void Succeeded(long version, DateTimeOffset at)
    {
        lock (gate)
        {
            failure = null;
            failures = 0;
            lastVersion = version;
            lastAt = at;
        }
    }

    /// <summary>A checkpoint attempt failed; the learner carries on in memory and tries again.</summary>
    public void Failed(Exception error, DateTimeOffset at)
    {
        lock (gate)
        {
            failures++;
            var full = CheckpointRetry.IsOutOfSpace(error);
            var since = lastVersion is { } v ? string.Create(CultureInfo.InvariantCulture, $"{CheckpointVersion.DirectoryName(v)} at {lastAt:yyyy-MM-ddTHH:mm:ssZ}") : "the start";
            var why = full ? " because the checkpoint volume is full" : "";
            failure = string.Create(CultureInfo.InvariantCulture,
                $"{failures} checkpoint(s) failed since {since}, the last at {at:yyyy-MM-ddTHH:mm:ssZ}{why}: {error.Message}; learning continues in memory, offsets stay uncommitted and no policy is published until a checkpoint succeeds (tried again at the next update or checkpoint interval)");
        }
    }

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            var note = startNote is null ? "" : $"; when loaded: {startNote}";
            if (failure is not null) return Task.FromResult(ProbeResult.Fail(Name, failure + note));
            var last = lastVersion is { } v ? string.Create(CultureInfo.InvariantCulture, $"last checkpoint {CheckpointVersion.DirectoryName(v)} at {lastAt:yyyy-MM-ddTHH:mm:ssZ}") : "no checkpoint yet";
            return Task.FromResult(ProbeResult.Pass(Name, last + note));
        }
    }
}
