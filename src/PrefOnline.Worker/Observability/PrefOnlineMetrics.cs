using PrefOnline.Learning.Online;
using System.Diagnostics.Metrics;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Observability;

/// <summary>
/// The one owner of the worker's instruments (names, HELP and labels from <see cref="MetricCatalog"/>).
/// Services call the methods here; nothing else creates instruments on the PrefOnline meter except
/// PrefOnline.Streaming's transport metrics. Guardrail metrics are read from the attached
/// <see cref="Guardrail"/> at scrape time, so they can never disagree with its state.
/// </summary>
public sealed class PrefOnlineMetrics : IDisposable, IOnlineLearnerObserver
{
    /// <summary>Values in the rolling reward mean per source.</summary>
    public const int RewardWindow = 256;

    private static readonly string[] Roles = ["all", "generator", "learner"];

    private readonly Meter meter;
    private readonly bool ownsMeter;
    private readonly Gauge<int> buildInfo;
    private readonly Gauge<int> ready;
    private readonly Gauge<long> policyVersion;
    private readonly Counter<long> updates;
    private readonly Counter<long> skippedUpdates;
    private readonly Gauge<double> lastUpdate;
    private readonly Histogram<double> updateDuration;
    private readonly Gauge<double> kl;
    private readonly Gauge<double> loss;
    private readonly Gauge<double> gradNorm;
    private readonly Gauge<double> entropy;
    private readonly Gauge<long> replaySize;
    private readonly Gauge<double> sampleStaleness;
    private readonly Counter<long> generatedTokens;
    private readonly Counter<long> checkpoints;
    private readonly Counter<long> rollbacks;
    private readonly Counter<long> checkpointFailures;
    private readonly Counter<long> policyRequests;
    private readonly Counter<long> servingPublishes;
    private readonly Gauge<long> servingVersion;
    private readonly Histogram<double> servingDuration;
    private readonly RollingMean modelReward = new(RewardWindow);
    private readonly RollingMean humanReward = new(RewardWindow);
    private Guardrail? guardrail;
    private int updateSeen;

    /// <summary>For dependency injection: the factory owns (and disposes) the meter.</summary>
    public PrefOnlineMetrics(IMeterFactory meterFactory)
        : this(meterFactory.Create(new MeterOptions(MetricCatalog.MeterName)), ownsMeter: false)
    {
    }

    /// <summary>With a meter the caller made (tests give it a Scope to isolate it); disposed with this object.</summary>
    public PrefOnlineMetrics(Meter meter)
        : this(meter, ownsMeter: true)
    {
    }

    private PrefOnlineMetrics(Meter meter, bool ownsMeter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        this.meter = meter;
        this.ownsMeter = ownsMeter;

        buildInfo = Gauge<int>(MetricCatalog.BuildInfo);
        ready = Gauge<int>(MetricCatalog.Ready);
        policyVersion = Gauge<long>(MetricCatalog.PolicyVersion);
        updates = Counter(MetricCatalog.UpdatesTotal);
        skippedUpdates = Counter(MetricCatalog.SkippedUpdatesTotal);
        lastUpdate = Gauge<double>(MetricCatalog.LastUpdateTimestamp, "s");
        updateDuration = meter.CreateHistogram<double>(
            MetricCatalog.UpdateDuration.Name, "s", MetricCatalog.UpdateDuration.Help, tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MetricCatalog.UpdateDuration.Buckets });
        kl = Gauge<double>(MetricCatalog.KlToReference);
        loss = Gauge<double>(MetricCatalog.Loss);
        gradNorm = Gauge<double>(MetricCatalog.GradNorm);
        entropy = Gauge<double>(MetricCatalog.PolicyEntropy);
        replaySize = Gauge<long>(MetricCatalog.ReplaySize);
        sampleStaleness = Gauge<double>(MetricCatalog.SampleStaleness);
        generatedTokens = Counter(MetricCatalog.GeneratedTokensTotal);
        checkpoints = Counter(MetricCatalog.CheckpointsTotal);
        rollbacks = Counter(MetricCatalog.RollbacksTotal);
        checkpointFailures = Counter(MetricCatalog.CheckpointFailuresTotal);
        policyRequests = Counter(MetricCatalog.PolicyRequestsTotal);
        servingPublishes = Counter(MetricCatalog.ServingPublishTotal);
        servingVersion = Gauge<long>(MetricCatalog.ServingVersion);
        servingDuration = meter.CreateHistogram<double>(
            MetricCatalog.ServingPublishDuration.Name, "s", MetricCatalog.ServingPublishDuration.Help, tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MetricCatalog.ServingPublishDuration.Buckets });

        meter.CreateObservableGauge(MetricCatalog.Reward.Name, ObserveRewards, unit: null, MetricCatalog.Reward.Help);
        meter.CreateObservableGauge(MetricCatalog.RewardDriftScore.Name, ObserveDriftScores, unit: null, MetricCatalog.RewardDriftScore.Help);
        meter.CreateObservableGauge(MetricCatalog.GuardrailState.Name, () => ObserveGuardrail(s => (int)s.State), unit: null, MetricCatalog.GuardrailState.Help);
        meter.CreateObservableGauge(MetricCatalog.GuardrailPaused.Name, () => ObserveGuardrail(s => s.UpdatesPaused ? 1 : 0), unit: null, MetricCatalog.GuardrailPaused.Help);
        meter.CreateObservableGauge(MetricCatalog.RewardModelAccuracy.Name, ObserveAccuracy, unit: null, MetricCatalog.RewardModelAccuracy.Help);
        meter.CreateObservableGauge(MetricCatalog.GoodVersion.Name, ObserveGoodVersion, unit: null, MetricCatalog.GoodVersion.Help);
        meter.CreateObservableCounter(MetricCatalog.DriftAlarmsTotal.Name, ObserveDriftAlarms, unit: null, MetricCatalog.DriftAlarmsTotal.Help);
        meter.CreateObservableCounter(MetricCatalog.GuardrailTripsTotal.Name, ObserveTrips, unit: null, MetricCatalog.GuardrailTripsTotal.Help);
        // Read from the guard only once the tensor engine has loaded it (a scrape must not load libtorch).
        meter.CreateObservableCounter(MetricCatalog.FinalizerGuardQueuedTotal.Name,
            () => FinalizerGuard.IsLoaded ? [new Measurement<long>((long)FinalizerGuard.Queued)] : Array.Empty<Measurement<long>>(),
            unit: null, MetricCatalog.FinalizerGuardQueuedTotal.Help);
        meter.CreateObservableGauge(MetricCatalog.FinalizerGuardPending.Name,
            () => FinalizerGuard.IsLoaded ? [new Measurement<long>((long)FinalizerGuard.Pending)] : Array.Empty<Measurement<long>>(),
            unit: null, MetricCatalog.FinalizerGuardPending.Help);
    }

    public Meter Meter => meter;

    /// <summary>Sets <c>prefonline_build_info{version,role}</c> to 1. Role: all, generator or learner.</summary>
    public void SetBuildInfo(string version, string role)
    {
        if (!Roles.Contains(role)) throw new ArgumentException($"role must be one of {string.Join(", ", Roles)} (got '{role}')", nameof(role));
        buildInfo.Record(1, new KeyValuePair<string, object?>("version", version), new KeyValuePair<string, object?>("role", role));
    }

    public void SetReady(bool isReady) => ready.Record(isReady ? 1 : 0);

    public void SetPolicyVersion(long version) => policyVersion.Record(version);

    /// <summary>
    /// The learner started: until its first update, <c>last_update_timestamp_seconds</c> reads the start
    /// time, so "no update for 15 minutes" also fires for a learner that never managed one.
    /// </summary>
    public void LearnerStarted(DateTimeOffset at)
    {
        if (Volatile.Read(ref updateSeen) == 0) lastUpdate.Record(at.ToUnixTimeMilliseconds() / 1000.0);
    }

    /// <summary>One applied update: counts it, times it, and sets the per-update gauges from <paramref name="report"/> (non-finite values are not recorded).</summary>
    public void UpdateApplied(UpdateReport report, TimeSpan duration, DateTimeOffset completedAt, double? meanSampleStaleness = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        Volatile.Write(ref updateSeen, 1);
        updates.Add(1);
        updateDuration.Record(duration.TotalSeconds);
        lastUpdate.Record(completedAt.ToUnixTimeMilliseconds() / 1000.0);
        policyVersion.Record(report.PolicyVersion);
        RecordFinite(loss, report.Loss);
        RecordFinite(gradNorm, report.GradNorm);
        RecordFinite(kl, report.KlToReference);
        RecordFinite(entropy, report.Entropy);
        RecordFinite(sampleStaleness, meanSampleStaleness);
    }

    /// <summary>An update that was due but not applied. <paramref name="reason"/>: one of <see cref="SkipReasons"/>.</summary>
    public void UpdateSkipped(string reason)
    {
        if (!SkipReasons.All.Contains(reason)) throw new ArgumentException($"unknown skip reason '{reason}'; use SkipReasons", nameof(reason));
        skippedUpdates.Add(1, new KeyValuePair<string, object?>("reason", reason));
    }

    /// <summary>One reward: a reward-model score of an on-policy sample (Model) or a human rating (Human).</summary>
    public void ObserveReward(DriftSource source, double reward) => (source == DriftSource.Model ? modelReward : humanReward).Add(reward);

    public void SetReplaySize(long samples) => replaySize.Record(samples);

    public void AddGeneratedTokens(long tokens)
    {
        if (tokens > 0) generatedTokens.Add(tokens);
    }

    public void CheckpointWritten() => checkpoints.Add(1);

    /// <summary>A checkpoint could not be written (<paramref name="outOfSpace"/>: the volume is full).</summary>
    public void CheckpointFailed(bool outOfSpace) =>
        checkpointFailures.Add(1, new KeyValuePair<string, object?>("reason", outOfSpace ? "out_of_space" : "io_error"));

    public void RolledBack() => rollbacks.Add(1);

    /// <summary>One request to the /policy port answered with <paramref name="status"/> (counted by result, see <see cref="MetricCatalog.PolicyRequestResults"/>).</summary>
    public void PolicyRequestAnswered(int status) => policyRequests.Add(1, new KeyValuePair<string, object?>("result", status switch
    {
        >= 200 and < 300 => "served",
        401 => "unauthorized",
        429 => "rate_limited",
        404 => "not_found",
        410 => "withdrawn",
        _ => "refused",
    }));

    /// <summary>
    /// One outcome of a hand-off to the serving stack (<paramref name="result"/>: one of <see cref="MetricCatalog.ServingResults"/>);
    /// <paramref name="duration"/> is recorded when the hand-off ended (not for a retry), <paramref name="version"/> on success.
    /// </summary>
    public void ServingHandOff(string publisher, string result, TimeSpan? duration = null, long? version = null)
    {
        if (!MetricCatalog.ServingResults.Contains(result)) throw new ArgumentException($"unknown serving result '{result}'", nameof(result));
        var label = new KeyValuePair<string, object?>("publisher", publisher);
        servingPublishes.Add(1, label, new KeyValuePair<string, object?>("result", result));
        if (duration is { } d) servingDuration.Record(d.TotalSeconds, label);
        if (version is { } v) servingVersion.Record(v, label);
    }

    /// <summary>Guardrail gauges and counters read this guardrail from now on (the worker's single instance).</summary>
    public void AttachGuardrail(Guardrail attached) => Volatile.Write(ref guardrail, attached ?? throw new ArgumentNullException(nameof(attached)));

    public void Dispose()
    {
        if (ownsMeter) meter.Dispose();
    }

    private Counter<long> Counter(MetricDefinition definition) => meter.CreateCounter<long>(definition.Name, unit: null, definition.Help);

    private Gauge<T> Gauge<T>(MetricDefinition definition, string? unit = null) where T : struct => meter.CreateGauge<T>(definition.Name, unit, definition.Help);

    private static void RecordFinite(Gauge<double> gauge, double? value)
    {
        if (value is { } v && double.IsFinite(v)) gauge.Record(v);
    }

    private IEnumerable<Measurement<double>> ObserveRewards()
    {
        if (modelReward.Mean is { } model) yield return new Measurement<double>(model, new KeyValuePair<string, object?>("source", "model"));
        if (humanReward.Mean is { } human) yield return new Measurement<double>(human, new KeyValuePair<string, object?>("source", "human"));
    }

    private IEnumerable<Measurement<double>> ObserveDriftScores()
    {
        if (Volatile.Read(ref guardrail) is not { } attached) yield break;
        var status = attached.Status;
        if (attached.Options.ModelReward.Enabled) yield return new Measurement<double>(status.ModelDriftScore, new KeyValuePair<string, object?>("source", "model"));
        if (attached.Options.HumanRating.Enabled) yield return new Measurement<double>(status.HumanDriftScore, new KeyValuePair<string, object?>("source", "human"));
    }

    private IEnumerable<Measurement<int>> ObserveGuardrail(Func<GuardrailStatus, int> read)
    {
        if (Volatile.Read(ref guardrail) is { } attached) yield return new Measurement<int>(read(attached.Status));
    }

    private IEnumerable<Measurement<double>> ObserveAccuracy()
    {
        if (Volatile.Read(ref guardrail) is { } attached && attached.Status.RewardModelAccuracy is var accuracy && double.IsFinite(accuracy))
            yield return new Measurement<double>(accuracy);
    }

    private IEnumerable<Measurement<long>> ObserveGoodVersion()
    {
        if (Volatile.Read(ref guardrail)?.Status.GoodVersion is { } good) yield return new Measurement<long>(good);
    }

    private IEnumerable<Measurement<long>> ObserveDriftAlarms()
    {
        if (Volatile.Read(ref guardrail) is not { } attached) yield break;
        foreach (var ((source, direction), count) in attached.Status.DriftAlarms)
        {
            yield return new Measurement<long>(count,
                new KeyValuePair<string, object?>("source", source == DriftSource.Model ? "model" : "human"),
                new KeyValuePair<string, object?>("direction", direction == DriftDirection.Up ? "up" : "down"));
        }
    }

    private IEnumerable<Measurement<long>> ObserveTrips()
    {
        if (Volatile.Read(ref guardrail) is not { } attached) yield break;
        foreach (var (check, count) in attached.Status.Trips)
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("check", check));
    }
}
