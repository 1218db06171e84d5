using System.Globalization;

namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// The learner's safety net. It watches four things and turns them into one state and one action:
/// <list type="number">
/// <item>reward drift: a <see cref="CusumDetector"/> on the on-policy reward (fed by <see cref="Evaluate"/>,
///   one batch mean per update) and another on human ratings (<see cref="ObserveHumanRating"/>);</item>
/// <item>the KL budget to the reference (per update);</item>
/// <item>the reward model's live accuracy on human pairs (<see cref="ObserveRewardModelPrediction"/>);</item>
/// <item>NaN/Inf in an update's metrics.</item>
/// </list>
/// A failing check trips the guardrail; the trip is latched until the configured action has been
/// carried out (<see cref="RollbackCompleted"/>, <see cref="Resume"/>, or the alert hold passing), and
/// while tripped no version qualifies as <c>good</c> (<see cref="GoodCheckpointTracker"/>).
/// The guardrail decides; the worker acts (rollback, pause) and reports back. Thread-safe: the learner,
/// the feedback intake and the metrics scrape call it concurrently.
/// </summary>
public sealed class Guardrail
{
    private readonly object gate = new();
    private readonly GuardrailOptions options;
    private readonly TimeProvider time;
    private readonly CusumDetector modelDetector;
    private readonly CusumDetector humanDetector;
    private readonly RewardModelAccuracyMonitor accuracy;
    private readonly GoodCheckpointTracker good;
    private readonly Dictionary<(DriftSource, DriftDirection), long> driftAlarms = new()
    {
        [(DriftSource.Model, DriftDirection.Up)] = 0,
        [(DriftSource.Model, DriftDirection.Down)] = 0,
        [(DriftSource.Human, DriftDirection.Up)] = 0,
        [(DriftSource.Human, DriftDirection.Down)] = 0,
    };
    private readonly Dictionary<string, long> trips = GuardrailChecks.All.ToDictionary(c => c, _ => 0L);
    private readonly HashSet<string> failingChecks = [];
    private readonly List<string> tripReasons = [];
    private readonly List<string> pendingWarnings = [];
    private List<string> lastWarnings = [];

    private GuardrailState state = GuardrailState.Ok;
    private GuardrailAction activeAction = GuardrailAction.None;
    private bool tripReported;
    private bool rollbackPending;
    private DateTimeOffset trippedAt;
    private DateTimeOffset lastFailureAt;
    private DateTimeOffset? lastRollbackAt;
    private int nonFiniteStreak;
    private int klStreak;
    private double? lastKl;
    private bool accuracyArmed;   // the reward model once reached floor + margin (see ObserveRewardModelPrediction)

    /// <param name="options">Validated options (invalid ones throw here, naming every problem).</param>
    /// <param name="time">Clock for holds and cool-downs; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="initialGood">The <c>good</c> version found on disk at start-up, if any.</param>
    public Guardrail(GuardrailOptions options, TimeProvider? time = null, long? initialGood = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), nameof(options));
        this.options = options;
        this.time = time ?? TimeProvider.System;
        modelDetector = new CusumDetector(options.ModelReward.Cusum);
        humanDetector = new CusumDetector(options.HumanRating.Cusum);
        accuracy = new RewardModelAccuracyMonitor(options.AccuracyWindow);
        good = new GoodCheckpointTracker(options.GoodConfirmations, initialGood);
    }

    public GuardrailOptions Options => options;

    /// <summary>True while updates must not be applied (a trip under PauseUpdates, or an escalated rollback).</summary>
    public bool UpdatesPaused
    {
        get
        {
            lock (gate)
            {
                ExpireHolds(time.GetUtcNow());
                return state == GuardrailState.Tripped && activeAction == GuardrailAction.PauseUpdates;
            }
        }
    }

    public GuardrailState State
    {
        get
        {
            lock (gate)
            {
                ExpireHolds(time.GetUtcNow());
                return state;
            }
        }
    }

    /// <summary>One human rating (finite; others are ignored and counted by the detector).</summary>
    public DriftObservation ObserveHumanRating(double rating)
    {
        lock (gate)
        {
            if (!options.HumanRating.Enabled) return new DriftObservation(DriftPhase.WarmingUp, DriftDirection.None, 0, double.NaN, double.NaN, false);
            var observation = humanDetector.Observe(rating);
            HandleDrift(DriftSource.Human, observation, options.HumanRating, failures: null, warnings: pendingWarnings);
            return observation;
        }
    }

    /// <summary>One human preference pair: did the reward model score <c>chosen</c> above <c>rejected</c> before learning from it?</summary>
    public void ObserveRewardModelPrediction(bool rewardModelAgreed)
    {
        lock (gate)
        {
            accuracy.Observe(rewardModelAgreed);
            if (accuracy.Count < options.AccuracyMinPairs) return;
            // The check guards against a reward model that *fell*: a fresh one starts at a coin's 0.5 and
            // must first show it knows what users prefer, or every cold start would trip.
            if (!accuracyArmed && accuracy.Accuracy >= options.AccuracyFloor + options.AccuracyWarningMargin) accuracyArmed = true;
            if (accuracyArmed && accuracy.Accuracy < options.AccuracyFloor)
                Fail(GuardrailChecks.RewardModelAccuracy, AccuracyReason(), time.GetUtcNow());
        }
    }

    /// <summary>Judge one update. Call after every update, before checkpointing or publishing its version.</summary>
    public GuardrailDecision Evaluate(UpdateReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        lock (gate)
        {
            var now = time.GetUtcNow();
            ExpireHolds(now);
            var warnings = new List<string>(pendingWarnings);
            pendingWarnings.Clear();
            var failures = new List<(string Check, string Reason)>();

            // 1. NaN/Inf: the update is rejected at once; repeated ones trip.
            var nonFinite = NonFiniteFields(report);
            var reject = nonFinite.Count > 0;
            if (reject)
            {
                nonFiniteStreak++;
                var reason = $"{GuardrailChecks.NonFinite}: update v{report.PolicyVersion} has non-finite {string.Join(", ", nonFinite)} ({nonFiniteStreak} in a row, trip after {options.NonFiniteTripAfter}); update rejected";
                if (nonFiniteStreak >= options.NonFiniteTripAfter) failures.Add((GuardrailChecks.NonFinite, reason));
                else warnings.Add(reason);
            }
            else
            {
                nonFiniteStreak = 0;
            }

            // 2. Drift of the on-policy reward (one batch mean per update, so a CUSUM run of n
            //    observations spans the last n versions).
            long? suspectFrom = null;
            if (options.ModelReward.Enabled && report.MeanReward is { } meanReward && double.IsFinite(meanReward))
            {
                var observation = modelDetector.Observe(meanReward);
                HandleDrift(DriftSource.Model, observation, options.ModelReward, failures, warnings);
                var run = modelDetector.RunLength(options.ModelReward.TripOn);
                if (run > 0) suspectFrom = report.PolicyVersion - run + 1;
            }
            if (options.HumanRating.Enabled && humanDetector.Score >= options.DriftWarningScore && humanDetector.Score <= 1)
                warnings.Add(F($"{GuardrailChecks.HumanRatingDrift}: drift score {humanDetector.Score:0.00} (alarm at 1)"));

            // 3. KL budget.
            if (report.KlToReference is { } kl && double.IsFinite(kl))
            {
                lastKl = kl;
                if (kl > options.KlBudget)
                {
                    klStreak++;
                    var reason = F($"{GuardrailChecks.KlBudget}: KL to reference {kl:0.###} > budget {options.KlBudget:0.###} ({klStreak} update(s) in a row, trip after {options.KlConsecutiveToTrip})");
                    if (klStreak >= options.KlConsecutiveToTrip) failures.Add((GuardrailChecks.KlBudget, reason));
                    else warnings.Add(reason);
                }
                else
                {
                    klStreak = 0;
                    if (kl >= options.KlWarningFraction * options.KlBudget)
                        warnings.Add(F($"{GuardrailChecks.KlBudget}: KL to reference {kl:0.###} is {kl / options.KlBudget:P0} of the budget {options.KlBudget:0.###}"));
                }
            }

            // 4. Reward-model accuracy (pairs arrive between updates; judged here too so a trip is never missed).
            if (accuracy.Count >= options.AccuracyMinPairs && !accuracyArmed)
            {
                warnings.Add(F($"{GuardrailChecks.RewardModelAccuracy}: reward model still learning (accuracy {accuracy.Accuracy:0.000} on the last {accuracy.Count} human pairs; the check arms at {options.AccuracyFloor + options.AccuracyWarningMargin:0.00})"));
            }
            else if (accuracy.Count >= options.AccuracyMinPairs)
            {
                if (accuracy.Accuracy < options.AccuracyFloor) failures.Add((GuardrailChecks.RewardModelAccuracy, AccuracyReason()));
                else if (accuracy.Accuracy < options.AccuracyFloor + options.AccuracyWarningMargin)
                    warnings.Add(F($"{GuardrailChecks.RewardModelAccuracy}: accuracy {accuracy.Accuracy:0.000} within {options.AccuracyWarningMargin:0.00} of the floor {options.AccuracyFloor:0.00}"));
            }

            foreach (var (check, reason) in failures) Fail(check, reason, now);

            if (state != GuardrailState.Tripped) state = warnings.Count > 0 ? GuardrailState.Warning : GuardrailState.Ok;
            lastWarnings = warnings;

            var isNewTrip = state == GuardrailState.Tripped && !tripReported;
            if (state == GuardrailState.Tripped) tripReported = true;
            var action = state != GuardrailState.Tripped
                ? GuardrailAction.None
                : activeAction switch
                {
                    GuardrailAction.Alert => isNewTrip ? GuardrailAction.Alert : GuardrailAction.None,
                    GuardrailAction.PauseUpdates => GuardrailAction.PauseUpdates,
                    GuardrailAction.Rollback => rollbackPending ? GuardrailAction.Rollback : GuardrailAction.None,
                    _ => GuardrailAction.None,
                };

            // A version qualifies for `good` only if nothing failed and it was not rejected; versions
            // inside the model detector's current run towards a tripping alarm wait (suspectFrom), and
            // nothing is proposed while either detector is halfway to an alarm (hold). The detectors'
            // warm-ups do not hold `good` back: with the model stream's 50 updates that kept `good` on the
            // first version for minutes, and a rollback then discarded the whole run (issue 11).
            var passed = state != GuardrailState.Tripped && !reject;
            var hold = (options.ModelReward.Enabled && modelDetector.Score >= options.DriftWarningScore)
                       || (options.HumanRating.Enabled && humanDetector.Score >= options.DriftWarningScore);
            var promote = good.OnEvaluation(report.PolicyVersion, passed, suspectFrom, hold);

            return new GuardrailDecision(
                report.PolicyVersion,
                state,
                action,
                CurrentReasons(),
                isNewTrip,
                reject,
                promote,
                action == GuardrailAction.Rollback ? good.GoodVersion : null);
        }
    }

    /// <summary>A durable checkpoint of <paramref name="version"/> was written. Returns a version to move <c>good</c> to (with zero confirmations).</summary>
    public long? CheckpointWritten(long version)
    {
        lock (gate) return good.CheckpointWritten(version);
    }

    /// <summary>
    /// The store's <c>good</c> pointer now names <paramref name="version"/> (a <see cref="GuardrailDecision.PromoteGood"/>
    /// was written). Only from here on is it the rollback target and <see cref="GuardrailStatus.GoodVersion"/>:
    /// a proposal whose write failed is proposed again, and the target always exists on disk.
    /// </summary>
    public void GoodMarked(long version)
    {
        lock (gate) good.Marked(version);
    }

    /// <summary>Checkpointed versions waiting to become <c>good</c> (retention must keep them), oldest first.</summary>
    public IReadOnlyList<long> PromotionCandidates
    {
        get
        {
            lock (gate) return good.PendingVersions;
        }
    }

    /// <summary>
    /// The worker rolled back to <paramref name="goodVersion"/> and published the event. Clears the trip
    /// and restarts every monitor (the detectors re-learn their baseline on the restored policy).
    /// </summary>
    public void RollbackCompleted(long goodVersion)
    {
        lock (gate)
        {
            lastRollbackAt = time.GetUtcNow();
            good.RolledBackTo(goodVersion);
            ResetMonitors();
            ClearTrip();
        }
    }

    /// <summary>
    /// An operator rolled the policy back by hand (<c>prefonline checkpoint rollback</c>) and <c>good</c> is now
    /// <paramref name="goodVersion"/> (the store moves it back with <c>latest</c> when it was newer than the target). Versions awaiting promotion belonged to the abandoned line and are
    /// dropped, the monitors restart on the restored policy, and a trip is lifted (the operator has acted);
    /// unlike a guardrail rollback this starts no cool-down.
    /// </summary>
    public void OperatorRolledBack(long? goodVersion)
    {
        lock (gate)
        {
            good.RolledBackTo(goodVersion);
            ResetMonitors();
            ClearTrip();
        }
    }

    /// <summary>Lift a pause (or an alert-only trip) by hand; the monitors restart with fresh baselines.</summary>
    public void Resume()
    {
        lock (gate)
        {
            if (state != GuardrailState.Tripped) return;
            ResetMonitors();
            ClearTrip();
        }
    }

    public GuardrailStatus Status
    {
        get
        {
            lock (gate)
            {
                ExpireHolds(time.GetUtcNow());
                return new GuardrailStatus(
                    state,
                    state == GuardrailState.Tripped && activeAction == GuardrailAction.PauseUpdates,
                    CurrentReasons(),
                    options.ModelReward.Enabled ? modelDetector.Score : 0,
                    options.HumanRating.Enabled ? humanDetector.Score : 0,
                    modelDetector.IsArmed,
                    humanDetector.IsArmed,
                    accuracy.Accuracy,
                    accuracy.Count,
                    lastKl,
                    good.GoodVersion,
                    new Dictionary<(DriftSource, DriftDirection), long>(driftAlarms),
                    new Dictionary<string, long>(trips));
            }
        }
    }

    private void HandleDrift(DriftSource source, DriftObservation observation, DriftStreamOptions stream,
                             List<(string Check, string Reason)>? failures, List<string> warnings)
    {
        var check = source == DriftSource.Model ? GuardrailChecks.ModelRewardDrift : GuardrailChecks.HumanRatingDrift;
        if (observation.Alarm == DriftDirection.None)
        {
            if (source == DriftSource.Model && observation.Score >= options.DriftWarningScore)
                warnings.Add(F($"{check}: drift score {observation.Score:0.00} (alarm at 1)"));
            return;
        }
        driftAlarms[(source, observation.Alarm)]++;
        var what = source == DriftSource.Model ? "on-policy reward" : "human ratings";
        var direction = observation.Alarm == DriftDirection.Up ? "up" : "down";
        var reason = F($"{check}: {what} shifted {direction} (CUSUM score {observation.Score:0.00} >= 1; baseline mean {observation.BaselineMean:0.####}, sd {observation.BaselineStdDev:0.####}); detector re-baselining");
        if ((stream.TripOn & observation.Alarm) != 0)
        {
            if (failures is null) Fail(check, reason, time.GetUtcNow());
            else failures.Add((check, reason));
        }
        else
        {
            warnings.Add(reason + " (this direction does not trip)");
        }
    }

    private void Fail(string check, string reason, DateTimeOffset now)
    {
        lastFailureAt = now;
        if (failingChecks.Add(check)) trips[check]++;
        tripReasons.RemoveAll(r => r.StartsWith(check + ":", StringComparison.Ordinal)); // one current reason per check
        tripReasons.Add(reason);
        if (state == GuardrailState.Tripped) return;

        state = GuardrailState.Tripped;
        trippedAt = now;
        tripReported = false;
        activeAction = options.Action;
        if (activeAction == GuardrailAction.Rollback)
        {
            if (good.GoodVersion is null)
            {
                activeAction = GuardrailAction.PauseUpdates;
                tripReasons.Add("rollback impossible: no version has qualified as good yet; pausing updates instead");
            }
            else if (lastRollbackAt is { } last && now - last < options.RollbackCooldown)
            {
                activeAction = GuardrailAction.PauseUpdates;
                tripReasons.Add(F($"rollback suppressed: tripped again {(now - last).TotalMinutes:0.#} min after the last rollback (cool-down {options.RollbackCooldown.TotalMinutes:0.#} min); pausing updates instead"));
            }
        }
        rollbackPending = activeAction == GuardrailAction.Rollback;
    }

    private void ExpireHolds(DateTimeOffset now)
    {
        if (state != GuardrailState.Tripped) return;
        if (activeAction == GuardrailAction.Alert && now - lastFailureAt >= options.AlertHold)
        {
            ClearTrip();
        }
        else if (activeAction == GuardrailAction.PauseUpdates && options.PauseDuration > TimeSpan.Zero && now - trippedAt >= options.PauseDuration)
        {
            ResetMonitors();
            ClearTrip();
        }
    }

    private void ClearTrip()
    {
        state = GuardrailState.Ok;
        activeAction = GuardrailAction.None;
        rollbackPending = false;
        tripReported = false;
        failingChecks.Clear();
        tripReasons.Clear();
        lastWarnings = [];
    }

    private void ResetMonitors()
    {
        modelDetector.Reset();
        humanDetector.Reset();
        accuracy.Reset();
        accuracyArmed = false;
        nonFiniteStreak = 0;
        klStreak = 0;
        lastKl = null;
        pendingWarnings.Clear();
    }

    private IReadOnlyList<string> CurrentReasons() =>
        state == GuardrailState.Tripped ? [.. tripReasons, .. lastWarnings] : [.. lastWarnings, .. pendingWarnings];

    private string AccuracyReason() =>
        F($"{GuardrailChecks.RewardModelAccuracy}: reward model agreed with {accuracy.Accuracy:0.000} of the last {accuracy.Count} human pairs < floor {options.AccuracyFloor:0.00}");

    private static List<string> NonFiniteFields(UpdateReport report)
    {
        var fields = new List<string>();
        if (report.Loss is { } loss && !double.IsFinite(loss)) fields.Add("loss");
        if (report.GradNorm is { } norm && !double.IsFinite(norm)) fields.Add("grad_norm");
        if (report.KlToReference is { } kl && !double.IsFinite(kl)) fields.Add("kl_to_reference");
        if (report.Entropy is { } entropy && !double.IsFinite(entropy)) fields.Add("entropy");
        if (report.MeanReward is { } reward && !double.IsFinite(reward)) fields.Add("reward");
        return fields;
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
