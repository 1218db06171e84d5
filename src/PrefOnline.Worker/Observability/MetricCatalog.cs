using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// Every metric PrefOnline exposes, named in one place with its HELP text and label allow-list. The
/// names are an operator interface (alert rules and dashboards query them): change them only with a
/// reason, and update config/prometheus/prefonline-alerts.yml and the Grafana dashboard with them (a
/// test checks both only use names listed here). <see cref="PrefOnlineMetrics"/> creates the worker's
/// instruments from these definitions; PrefOnline.Streaming creates <see cref="MessagesTotal"/> and
/// <see cref="ConsumerLag"/> itself on a Meter of the same name. <see cref="PrometheusExporter"/> declares one
/// prometheus-net collector per definition (name, HELP, labels, buckets), whichever assembly records it.
/// </summary>
public static class MetricCatalog
{
    /// <summary>The <see cref="System.Diagnostics.Metrics.Meter"/> name every PrefOnline instrument lives on.</summary>
    public const string MeterName = "PrefOnline";

    private static readonly string[] None = [];
    private static readonly string[] Sources = ["model", "human"];

    public static readonly MetricDefinition BuildInfo = new(
        "prefonline_build_info", MetricKind.Gauge,
        "Always 1; labels carry the running version and role (all, generator, learner).",
        ["version", "role"]);

    public static readonly MetricDefinition Ready = new(
        "prefonline_ready", MetricKind.Gauge,
        "1 when every readiness check passes (model loaded, Kafka reachable, not paused by a guardrail), else 0. Same verdict as /readyz.",
        None);

    public static readonly MetricDefinition PolicyVersion = new(
        "prefonline_policy_version", MetricKind.Gauge,
        "Version of the policy currently used for generation (learner: the latest update).",
        None);

    public static readonly MetricDefinition GoodVersion = new(
        "prefonline_good_version", MetricKind.Gauge,
        "Version the good checkpoint pointer names (the rollback target): the newest checkpointed version followed by Guardrails:GoodConfirmations passing updates; moves only after the pointer is written.",
        None);

    public static readonly MetricDefinition UpdatesTotal = new(
        "prefonline_updates_total", MetricKind.Counter,
        "Policy updates applied by the learner.",
        None);

    public static readonly MetricDefinition SkippedUpdatesTotal = new(
        "prefonline_skipped_updates_total", MetricKind.Counter,
        "Policy updates that were due but not applied, by reason (non_finite, paused, rejected, insufficient_data, error).",
        ["reason"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["reason"] = SkipReasons.All } };

    public static readonly MetricDefinition LastUpdateTimestamp = new(
        "prefonline_last_update_timestamp_seconds", MetricKind.Gauge,
        "Unix time of the last applied policy update (the learner's start time until the first update).",
        None);

    public static readonly MetricDefinition UpdateDuration = new(
        "prefonline_update_duration_seconds", MetricKind.Histogram,
        "Wall time of one policy update (all inner steps), seconds.",
        None,
        [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]);

    public static readonly MetricDefinition Reward = new(
        "prefonline_reward", MetricKind.Gauge,
        "Rolling mean reward of recent on-policy samples: source=model is the reward model's score, source=human the human ratings.",
        ["source"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["source"] = Sources } };

    public static readonly MetricDefinition RewardDriftScore = new(
        "prefonline_reward_drift_score", MetricKind.Gauge,
        "CUSUM drift statistic of the reward stream divided by its alarm threshold: 0 in control, 1 raises a drift alarm (the detector then re-baselines).",
        ["source"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["source"] = Sources } };

    public static readonly MetricDefinition DriftAlarmsTotal = new(
        "prefonline_drift_alarms_total", MetricKind.Counter,
        "Reward drift alarms by stream (source=model|human) and direction (up|down); down alarms trip the guardrail by default.",
        ["source", "direction"])
    {
        KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["source"] = Sources, ["direction"] = ["up", "down"] },
    };

    public static readonly MetricDefinition GuardrailState = new(
        "prefonline_guardrail_state", MetricKind.Gauge,
        "Guardrail state: 0 ok, 1 warning (a check near its limit), 2 tripped (a check failed; the configured action applies).",
        None);

    public static readonly MetricDefinition GuardrailPaused = new(
        "prefonline_guardrail_paused", MetricKind.Gauge,
        "1 while a guardrail trip keeps the learner from applying updates, else 0.",
        None);

    public static readonly MetricDefinition GuardrailTripsTotal = new(
        "prefonline_guardrail_trips_total", MetricKind.Counter,
        "Guardrail checks that failed, by check (drift_model, drift_human, kl_budget, reward_model_accuracy, non_finite).",
        ["check"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["check"] = GuardrailChecks.All } };

    public static readonly MetricDefinition RewardModelAccuracy = new(
        "prefonline_reward_model_accuracy", MetricKind.Gauge,
        "Fraction of recent human preference pairs the reward model ranked correctly before training on them.",
        None);

    public static readonly MetricDefinition KlToReference = new(
        "prefonline_kl_to_reference", MetricKind.Gauge,
        "KL divergence from the policy to the reference model on the last update's batch, nats per sequence.",
        None);

    public static readonly MetricDefinition Loss = new(
        "prefonline_loss", MetricKind.Gauge,
        "Objective value of the last update's final inner step.",
        None);

    public static readonly MetricDefinition GradNorm = new(
        "prefonline_grad_norm", MetricKind.Gauge,
        "Global gradient L2 norm of the last update before clipping.",
        None);

    public static readonly MetricDefinition PolicyEntropy = new(
        "prefonline_policy_entropy", MetricKind.Gauge,
        "Mean per-token entropy of the policy on the last update's samples, nats.",
        None);

    public static readonly MetricDefinition ReplaySize = new(
        "prefonline_replay_size", MetricKind.Gauge,
        "Samples held in the replay buffer.",
        None);

    public static readonly MetricDefinition SampleStaleness = new(
        "prefonline_sample_staleness", MetricKind.Gauge,
        "Mean age of the last update's samples in policy versions (current version minus the version that generated them).",
        None);

    public static readonly MetricDefinition GeneratedTokensTotal = new(
        "prefonline_generated_tokens_total", MetricKind.Counter,
        "Completion tokens sampled by the generator.",
        None);

    public static readonly MetricDefinition CheckpointsTotal = new(
        "prefonline_checkpoints_total", MetricKind.Counter,
        "Checkpoints written durably.",
        None);

    /// <summary>Values of the <c>reason</c> label of <see cref="CheckpointFailuresTotal"/>.</summary>
    public static readonly IReadOnlyList<string> CheckpointFailureReasons = ["out_of_space", "io_error"];

    public static readonly MetricDefinition CheckpointFailuresTotal = new(
        "prefonline_checkpoint_failures_total", MetricKind.Counter,
        "Checkpoints that could not be written (reason=out_of_space: the volume is full even after retention made room; io_error: any other I/O failure). The learner keeps learning in memory and retries; /readyz fails until one succeeds.",
        ["reason"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["reason"] = CheckpointFailureReasons } };

    public static readonly MetricDefinition RollbacksTotal = new(
        "prefonline_rollbacks_total", MetricKind.Counter,
        "Rollbacks to the good checkpoint performed by the worker (guardrail-triggered).",
        None);

    /// <summary>Recorded by PrefOnline.Streaming. <c>result</c> values: see <see cref="MessageResults"/>.</summary>
    public static readonly MetricDefinition MessagesTotal = new(
        "prefonline_messages_total", MetricKind.Counter,
        "Kafka (or embedded transport) records handled, by topic and result; result=dead_letter counts records routed to the DLQ, result=skipped refused policy-topic records skipped without one.",
        ["topic", "result"]);

    /// <summary>Recorded by PrefOnline.Streaming: the dead letters of <see cref="MessagesTotal"/> again, by reason code.</summary>
    public static readonly MetricDefinition DeadLettersTotal = new(
        "prefonline_dead_letters_total", MetricKind.Counter,
        "Records routed to the dead-letter topic, by source topic and stable reason code (invalid-json, missing-field, non-finite-number, duplicate-id, ...).",
        ["topic", "reason"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["reason"] = Streaming.Validation.ReasonCodes.All } };

    /// <summary>Recorded by PrefOnline.Streaming: the skipped records of <see cref="MessagesTotal"/> again, by reason code.</summary>
    public static readonly MetricDefinition SkippedRecordsTotal = new(
        "prefonline_skipped_records_total", MetricKind.Counter,
        "Refused records skipped without a dead letter, by topic and reason code: policy-topic records, which every generator reads from the start (the record stays at its position there), including valid policy events a generator could not verify (untrusted-uri, incomplete-file-list, hash-mismatch, too-large, fetch-failed, load-failed).",
        ["topic", "reason"])
    {
        KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["reason"] = [.. Streaming.Validation.ReasonCodes.All, .. PolicyDistribution.PolicyRefusalReasons.All] },
    };

    /// <summary>Values of the <c>result</c> label of <see cref="PolicyRequestsTotal"/>.</summary>
    public static readonly IReadOnlyList<string> PolicyRequestResults = ["served", "unauthorized", "rate_limited", "not_found", "withdrawn", "refused"];

    public static readonly MetricDefinition PolicyRequestsTotal = new(
        "prefonline_policy_requests_total", MetricKind.Counter,
        "Requests to the learner's /policy port, by result: served (200), unauthorized (401: no or a wrong bearer token), rate_limited (429), not_found (404), withdrawn (410: a version a rollback abandoned), refused (any other status).",
        ["result"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["result"] = PolicyRequestResults } };

    /// <summary>Values of the <c>result</c> label of <see cref="ServingPublishTotal"/>.</summary>
    public static readonly IReadOnlyList<string> ServingResults = ["success", "unchanged", "retry", "rejected", "failed", "superseded"];

    public static readonly MetricDefinition ServingPublishTotal = new(
        "prefonline_serving_publish_total", MetricKind.Counter,
        "Hand-offs of policy versions to the serving stack (Serving:Publishers), by publisher and result: success, unchanged (the version was handed off already), retry (an attempt failed and is tried again), rejected (refused for good: a 4xx, success=false, files that do not match the event), failed (every attempt failed), superseded (a newer announcement replaced a pending retry).",
        ["publisher", "result"]) { KnownLabelValues = new Dictionary<string, IReadOnlyList<string>> { ["result"] = ServingResults } };

    public static readonly MetricDefinition ServingVersion = new(
        "prefonline_serving_version", MetricKind.Gauge,
        "Policy version the publisher last handed off successfully (after a rollback: the restored version).",
        ["publisher"]);

    public static readonly MetricDefinition ServingPublishDuration = new(
        "prefonline_serving_publish_duration_seconds", MetricKind.Histogram,
        "Wall time of one hand-off to the serving stack, from its first attempt to success or giving up (export, HTTP calls, retries), seconds.",
        ["publisher"],
        [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]);

    /// <summary>Recorded by PrefOnline.Streaming.</summary>
    public static readonly MetricDefinition ConsumerLag = new(
        "prefonline_consumer_lag", MetricKind.Gauge,
        "Records between the consumer's position and the partition's high watermark, per assigned partition.",
        ["topic", "partition"]);

    /// <summary>Produced by the exporter itself, not an instrument.</summary>
    public static readonly MetricDefinition LabelRejectionsTotal = new(
        "prefonline_metrics_label_rejections_total", MetricKind.Counter,
        "Measurements whose labels the exporter refused or rewrote (reason: key_not_allowed, value_too_long, control_character, series_limit, invalid_value, type_conflict).",
        ["metric", "reason"]);

    public static readonly MetricDefinition FinalizerGuardQueuedTotal = new(
        "prefonline_finalizer_guard_queued_total", MetricKind.Counter,
        "Native TorchSharp objects (Scalar, Tensor, Generator) the .NET finalizer released, which the finalizer guard freed 2-3 s later instead of at once.",
        None);

    public static readonly MetricDefinition FinalizerGuardPending = new(
        "prefonline_finalizer_guard_pending", MetricKind.Gauge,
        "Native TorchSharp objects the finalizer released that wait for their grace in the finalizer guard's queue.",
        None);

    /// <summary>Produced by the exporter itself, not an instrument.</summary>
    public static readonly MetricDefinition CallbackErrorsTotal = new(
        "prefonline_metrics_callback_errors_total", MetricKind.Counter,
        "Observable-instrument callbacks that threw during a scrape.",
        None);

    public static IReadOnlyList<MetricDefinition> All { get; } =
    [
        BuildInfo, Ready, PolicyVersion, GoodVersion, UpdatesTotal, SkippedUpdatesTotal, LastUpdateTimestamp, UpdateDuration,
        Reward, RewardDriftScore, DriftAlarmsTotal, GuardrailState, GuardrailPaused, GuardrailTripsTotal, RewardModelAccuracy,
        KlToReference, Loss, GradNorm, PolicyEntropy, ReplaySize, SampleStaleness, GeneratedTokensTotal, CheckpointsTotal,
        CheckpointFailuresTotal, RollbacksTotal, MessagesTotal, DeadLettersTotal, SkippedRecordsTotal, ConsumerLag, PolicyRequestsTotal,
        ServingPublishTotal, ServingVersion, ServingPublishDuration, FinalizerGuardQueuedTotal, FinalizerGuardPending,
        LabelRejectionsTotal, CallbackErrorsTotal,
    ];

    private static readonly Dictionary<string, MetricDefinition> ByName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>The definition for an instrument or exposition name (counters match with or without <c>_total</c>).</summary>
    public static MetricDefinition? Find(string name) =>
        ByName.GetValueOrDefault(name) ?? ByName.GetValueOrDefault(name + "_total");
}
