using PrefOnline.Tensors;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// Configuration section <c>Worker</c>: what this process does and how it starts and stops.
/// CLI flags override it: <c>--role</c> sets <see cref="Role"/>, <c>--duration</c> sets <see cref="Duration"/>.
/// </summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Worker";

    /// <summary>all (default), generator or learner (see <see cref="WorkerRole"/>).</summary>
    public WorkerRole Role { get; set; } = WorkerRole.All;

    /// <summary>
    /// Stop by itself (a clean stop: final checkpoint, offsets committed, exit 0) after this long. Null or
    /// 00:00:00 = run until SIGTERM/Ctrl-C. The embedded demo uses <c>Demo:Duration</c> when this is unset.
    /// </summary>
    public TimeSpan? Duration { get; set; }

    /// <summary>libtorch intra-op threads of the one tensor thread (all tensor work runs there). 0 = the number of cores.</summary>
    public int TensorThreads { get; set; }

    /// <summary>
    /// Grace period of a stop (SIGTERM, Ctrl-C, --duration): intake stops, the step in flight finishes, a
    /// final checkpoint is written and offsets are committed within this time (the host's ShutdownTimeout).
    /// Keep it below Kubernetes' terminationGracePeriodSeconds (the chart: 120 s for the learner).
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Longest time the learner goes without a checkpoint while it absorbs input (e.g. while the guardrail
    /// pauses updates), so restarts re-read little and committed offsets keep up. Updates checkpoint anyway.
    /// </summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Opt-in audit for exactly-once tests: every checkpoint carries <c>absorbed-labels.jsonl</c>, the ids and
    /// positions of the feedback records absorbed since its parent (bounded by what one checkpoint absorbs;
    /// following the parent chain lists every absorbed label once). Off by default.
    /// </summary>
    public bool AuditAbsorbedLabels { get; set; }

    /// <summary>
    /// The URL of the learner's policy port as generators reach it (e.g. <c>http://prefonline-policy.ml.svc:8081</c>, the
    /// chart's policy Service). On a learner: policy events name <c>{PolicyBaseUrl}/policy/{version}/policy.safetensors</c>
    /// and it serves them on PolicyDistribution:Port, to holders of the token. On a generator: the only learner whose
    /// http(s) events it trusts. Unset: events name the <c>file://</c> path in the checkpoint store, which generators must mount.
    /// </summary>
    public string? PolicyBaseUrl { get; set; }

    /// <summary>Where checkpoint artefacts are staged before the store copies them in (default: the system temp directory).</summary>
    public string? StagingDirectory { get; set; }
}
