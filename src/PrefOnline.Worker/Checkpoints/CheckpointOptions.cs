namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Settings of the checkpoint store, configuration section <c>Checkpoints</c>. Validated at start-up by
/// <see cref="CheckpointOptionsValidator"/> (register with <see cref="CheckpointServiceCollectionExtensions.AddCheckpointOptions"/>).
/// The section with its defaults, for config/appsettings.json:
/// <code>
/// "Checkpoints": {
///   "Directory": "checkpoints",
///   "KeepLast": 5,
///   "RetryCount": 3,
///   "RetryBaseDelay": "00:00:00.200",
///   "RetryMaxDelay": "00:00:05"
/// }
/// </code>
/// Environment override example: <c>PREFONLINE__Checkpoints__Directory=/data/checkpoints</c>.
/// </summary>
public sealed class CheckpointOptions
{
    public const string SectionName = "Checkpoints";

    /// <summary>
    /// Root of the store; relative paths are taken from the working directory. Must be on a local
    /// or block volume (flock and rename atomicity are not reliable on NFS). Default "checkpoints".
    /// </summary>
    public string Directory { get; set; } = "checkpoints";

    /// <summary>
    /// How many of the newest versions retention keeps, besides what is still needed (never deleted: what
    /// <c>latest</c> and <c>good</c> name, the guardrail's promotion candidates, a pending rollback's target,
    /// policies being served to generators, versions another process is reading). Default 5: enough to roll
    /// back a few updates, while each version costs a full copy of policy, reward model, optimizer and replay.
    /// On a full volume the oldest versions beyond it are deleted to make room (docs/OPERATIONS.md,
    /// "Checkpoint retention and a full volume"). 1..10000.
    /// </summary>
    public int KeepLast { get; set; } = 5;

    /// <summary>
    /// Retries after a transient I/O failure (IOException other than not-found / truncation), with
    /// exponential backoff and jitter. Corruption is never retried. 0 disables retrying. Default 3, 0..20.
    /// </summary>
    public int RetryCount { get; set; } = 3;

    /// <summary>Delay before the first retry; doubles per attempt (with jitter). Default 200 ms, 0..60 s.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Cap on any one retry delay. Default 5 s; at least RetryBaseDelay, at most 10 min.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A checkpoint (the whole learning state, the offsets committed to Kafka) after every N-th update; every update is
    /// still published, the ones in between as publish-only versions (the policy files alone, a few MB with LoRA, the
    /// weights with full fine-tuning). A crash loses the updates since the last checkpoint: they are redone from the
    /// labels re-read from its offsets (docs/OPERATIONS.md, "Checkpoint interval"). Default 1: every update is a
    /// checkpoint. 1..100000.
    /// </summary>
    public int Interval { get; set; } = 1;

    /// <summary>
    /// Also checkpoint at the first update once this much time has passed since the last checkpoint, whatever
    /// <see cref="Interval"/> says (bounds the work a crash can cost). Default 00:00:00: off. At most 1 day.
    /// </summary>
    public TimeSpan IntervalTime { get; set; } = TimeSpan.Zero;
}
