using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Learning.Tests.Guardrails;

public sealed class GuardrailTests
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Small warm-ups so tests reach the armed phase quickly; otherwise the defaults.</summary>
    private static GuardrailOptions Options(GuardrailAction action = GuardrailAction.Rollback) => new()
    {
        Action = action,
        ModelReward = new DriftStreamOptions { Cusum = new CusumOptions { WarmUp = 20 } },
        HumanRating = new DriftStreamOptions { Cusum = new CusumOptions { WarmUp = 30 } },
        GoodConfirmations = 2,
    };

    /// <summary>
    /// Runs stable updates (reward N(0.5, 0.05²)), checkpointing each and writing every promotion (as the worker
    /// does: the store's pointer first, then <see cref="Guardrail.GoodMarked"/>); returns the next version number.
    /// </summary>
    private static long WarmUpToGood(Guardrail guardrail, SeededNoise noise, long version = 1, int updates = 30)
    {
        for (var i = 0; i < updates; i++, version++)
        {
            var decision = guardrail.Evaluate(new UpdateReport(version, Loss: 0.7, GradNorm: 1, KlToReference: 0.5, Entropy: 2, MeanReward: noise.Normal(0.5, 0.05)));
            Assert.Equal(GuardrailAction.None, decision.Action);
            if (guardrail.CheckpointWritten(version) is { } now) guardrail.GoodMarked(now);
            if (decision.PromoteGood is { } promoted) guardrail.GoodMarked(promoted);
        }
        Assert.NotNull(guardrail.Status.GoodVersion);
        return version;
    }

    [Fact]
    public void StableUpdatesPassAndAdvanceGood()
    {
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(1);
        var next = WarmUpToGood(guardrail, noise);
        Assert.Equal(GuardrailState.Ok, guardrail.State);
        // Good trails the newest version by the confirmations (plus whatever a short CUSUM run holds back).
        var good = guardrail.Status.GoodVersion!.Value;
        Assert.InRange(good, next - 1 - 2 - 3, next - 1 - 2);
    }

    [Fact]
    public void GoodAdvancesByThePredictableRuleFromTheFirstUpdatesNotOnlyOnceTheDetectorIsArmed()
    {
        // Issue 11: `good` waited for the model-reward detector's warm-up (50 updates), so for minutes it stayed
        // on the first version and a rollback discarded the whole run. The rule is now: a checkpointed version is
        // proposed once GoodConfirmations (2) later updates passed, warm-up or not.
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(2);
        var proposals = new List<(long Evaluated, long Proposed)>();
        for (long v = 1; v <= 19; v++)
        {
            var decision = guardrail.Evaluate(new UpdateReport(v, MeanReward: noise.Normal(0.5, 0.05)));
            Assert.False(guardrail.Status.ModelDetectorArmed); // warm-up is 20
            if (decision.PromoteGood is { } promoted)
            {
                proposals.Add((v, promoted));
                guardrail.GoodMarked(promoted);
            }
            guardrail.CheckpointWritten(v);
        }
        Assert.Equal(Enumerable.Range(3, 17).Select(v => ((long)v, (long)v - 2)), proposals);
        Assert.Equal(17, guardrail.Status.GoodVersion);
    }

    [Fact]
    public void TheGuardrailsGoodMovesOnlyWhenTheStoreReportsThePointerWritten()
    {
        // Issue 11: the tracker used to move `good` (the rollback target, prefonline_good_version) when it proposed a
        // version, before the store wrote the pointer; a failed write was only logged, and a rollback then asked
        // for a version the store had never marked.
        var guardrail = new Guardrail(Options(), initialGood: 1);
        var noise = new SeededNoise(6);
        var proposals = new List<long>();
        for (long v = 2; v <= 5; v++)
        {
            if (guardrail.Evaluate(new UpdateReport(v, MeanReward: noise.Normal(0.5, 0.05))).PromoteGood is { } proposed) proposals.Add(proposed);
            guardrail.CheckpointWritten(v);
        }
        Assert.Equal([2L, 3L], proposals);
        Assert.Equal(1, guardrail.Status.GoodVersion); // the write "failed": nothing reported
        Assert.Equal([2L, 3L, 4L, 5L], guardrail.PromotionCandidates);

        // The next evaluation proposes again (the newest confirmed version); once written, good moves.
        var again = guardrail.Evaluate(new UpdateReport(6, MeanReward: noise.Normal(0.5, 0.05)));
        Assert.Equal(4, again.PromoteGood);
        guardrail.GoodMarked(4);
        Assert.Equal(4, guardrail.Status.GoodVersion);
        Assert.Equal([5L], guardrail.PromotionCandidates);

        // A trip now rolls back to what the store marked.
        var trip = guardrail.Evaluate(new UpdateReport(7, Loss: double.NaN));
        for (var i = 0; i < 2 && trip.Action != GuardrailAction.Rollback; i++) trip = guardrail.Evaluate(new UpdateReport(8 + i, Loss: double.NaN));
        Assert.Equal(GuardrailAction.Rollback, trip.Action);
        Assert.Equal(4, trip.RollbackTo);
    }

    [Fact]
    public void ADownwardShiftOfOnPolicyRewardTripsAndAsksForRollbackToGood()
    {
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(3);
        var version = WarmUpToGood(guardrail, noise);
        var firstShifted = version;

        GuardrailDecision? trip = null;
        for (var i = 0; i < 30 && trip is null; i++, version++)
        {
            var decision = guardrail.Evaluate(new UpdateReport(version, MeanReward: noise.Normal(0.5 - 0.1, 0.05))); // -2σ
            if (decision.State == GuardrailState.Tripped) trip = decision;
            else guardrail.CheckpointWritten(version);
        }
        Assert.NotNull(trip);
        Assert.True(trip!.IsNewTrip);
        Assert.Equal(GuardrailAction.Rollback, trip.Action);
        // Versions written after the shift began passed their own checks and were checkpointed, yet
        // none became the rollback target: confirmations plus the CUSUM run kept them pending.
        var good = trip.RollbackTo;
        Assert.NotNull(good);
        Assert.True(good < firstShifted, $"good v{good} is not before the first shifted version v{firstShifted}");
        Assert.True(version - firstShifted >= 3, "the test needs a detection delay longer than the confirmations to mean anything");
        Assert.Null(trip.PromoteGood);
        Assert.Contains(trip.Reasons, r => r.StartsWith(GuardrailChecks.ModelRewardDrift) && r.Contains("down"));
        Assert.Equal(1, guardrail.Status.DriftAlarms[(DriftSource.Model, DriftDirection.Down)]);
        Assert.Equal(1, guardrail.Status.Trips[GuardrailChecks.ModelRewardDrift]);

        // Until the worker reports the rollback, every evaluation repeats the request; nothing becomes good.
        var again = guardrail.Evaluate(new UpdateReport(version, MeanReward: 0.5));
        Assert.Equal(GuardrailAction.Rollback, again.Action);
        Assert.False(again.IsNewTrip);
        Assert.Equal(good, guardrail.Status.GoodVersion);

        guardrail.RollbackCompleted(good!.Value);
        Assert.Equal(GuardrailState.Ok, guardrail.State);
        Assert.False(guardrail.Status.ModelDetectorArmed); // re-learning its baseline on the restored policy
        Assert.Equal(GuardrailAction.None, guardrail.Evaluate(new UpdateReport(good.Value + 1, MeanReward: 0.5)).Action);
    }

    [Fact]
    public void AnUpwardShiftOfOnPolicyRewardIsAWarningNotATrip()
    {
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(4);
        var version = WarmUpToGood(guardrail, noise);
        var sawUpAlarm = false;
        for (var i = 0; i < 40; i++, version++)
        {
            var decision = guardrail.Evaluate(new UpdateReport(version, MeanReward: noise.Normal(0.7, 0.05)));
            Assert.NotEqual(GuardrailState.Tripped, decision.State);
            Assert.Equal(GuardrailAction.None, decision.Action);
            sawUpAlarm |= decision.Reasons.Any(r => r.Contains("shifted up") && r.Contains("does not trip"));
        }
        Assert.True(sawUpAlarm);
        Assert.Equal(1, guardrail.Status.DriftAlarms[(DriftSource.Model, DriftDirection.Up)]);
    }

    [Fact]
    public void HumanRatingsAreWatchedSeparatelyFromModelRewards()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.PauseUpdates));
        var noise = new SeededNoise(5);
        var version = WarmUpToGood(guardrail, noise);
        for (var i = 0; i < 100; i++) Assert.Equal(DriftDirection.None, guardrail.ObserveHumanRating(noise.Normal(4, 0.5)).Alarm);
        Assert.True(guardrail.Status.HumanDetectorArmed);

        // Users change their mind: ratings of the same policy drop by 1.5 stars while model rewards stay flat.
        var alarmAfter = 0;
        while (guardrail.ObserveHumanRating(noise.Normal(2.5, 0.5)).Alarm == DriftDirection.None) Assert.True(++alarmAfter < 50);
        Assert.True(guardrail.UpdatesPaused); // paused at once, before the next update is evaluated

        var decision = guardrail.Evaluate(new UpdateReport(version, MeanReward: noise.Normal(0.5, 0.05)));
        Assert.Equal(GuardrailState.Tripped, decision.State);
        Assert.True(decision.IsNewTrip);
        Assert.Equal(GuardrailAction.PauseUpdates, decision.Action);
        Assert.Contains(decision.Reasons, r => r.StartsWith(GuardrailChecks.HumanRatingDrift));
        Assert.Equal(1, guardrail.Status.DriftAlarms[(DriftSource.Human, DriftDirection.Down)]);
        Assert.Equal(0, guardrail.Status.DriftAlarms[(DriftSource.Model, DriftDirection.Down)]);
        Assert.True(guardrail.Status.ModelDetectorArmed);

        // Still paused on later updates, until resumed by hand.
        Assert.Equal(GuardrailAction.PauseUpdates, guardrail.Evaluate(new UpdateReport(version + 1, MeanReward: 0.5)).Action);
        guardrail.Resume();
        Assert.False(guardrail.UpdatesPaused);
        Assert.Equal(GuardrailState.Ok, guardrail.State);
    }

    [Fact]
    public void UsersChangingTheirMindRightAfterAnImprovementStillTripTheGuardrail()
    {
        // Stop 19's CI failure, at the guardrail: ratings rose in a step (an upward alarm, a warning that
        // re-baselines the human detector), the users flipped their preference inside that warm-up, and ratings
        // fell far below where they were before the improvement. That drop must trip, not become the new baseline.
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(8);
        var version = WarmUpToGood(guardrail, noise);
        for (var i = 0; i < 100; i++) Assert.Equal(DriftDirection.None, guardrail.ObserveHumanRating(noise.Normal(3, 1)).Alarm);

        var up = 0;
        while (guardrail.ObserveHumanRating(noise.Normal(4.6, 1)).Alarm != DriftDirection.Up) Assert.True(++up < 50);
        Assert.False(guardrail.Status.HumanDetectorArmed); // re-baselining on the improved level
        Assert.Equal(GuardrailState.Ok, guardrail.State);
        for (var i = 0; i < 5; i++) guardrail.ObserveHumanRating(noise.Normal(4.6, 1));

        var down = 0;
        while (guardrail.ObserveHumanRating(noise.Normal(-4.6, 1)).Alarm != DriftDirection.Down) Assert.True(++down < 10, "no downward alarm while the detector re-baselines");
        Assert.False(guardrail.Status.HumanDetectorArmed); // still in the warm-up: the previous baseline caught it
        var decision = guardrail.Evaluate(new UpdateReport(version, MeanReward: noise.Normal(0.5, 0.05)));
        Assert.Equal(GuardrailAction.Rollback, decision.Action);
        Assert.Contains(decision.Reasons, r => r.StartsWith(GuardrailChecks.HumanRatingDrift) && r.Contains("shifted down"));
        Assert.Equal(1, guardrail.Status.DriftAlarms[(DriftSource.Human, DriftDirection.Up)]);
        Assert.Equal(1, guardrail.Status.DriftAlarms[(DriftSource.Human, DriftDirection.Down)]);
    }

    [Fact]
    public void KlBudgetWarnsNearTheBudgetAndTripsAfterConsecutiveOverruns()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.PauseUpdates) with { KlBudget = 2.0, KlConsecutiveToTrip = 2 });
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(1, KlToReference: 1.0)).State);
        var near = guardrail.Evaluate(new UpdateReport(2, KlToReference: 1.7)); // 85 % of the budget
        Assert.Equal(GuardrailState.Warning, near.State);
        Assert.Contains(near.Reasons, r => r.StartsWith(GuardrailChecks.KlBudget));
        var over = guardrail.Evaluate(new UpdateReport(3, KlToReference: 2.5));
        Assert.Equal(GuardrailState.Warning, over.State);  // one overrun: could be a noisy estimate
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(4, KlToReference: 0.5)).State); // streak broken
        guardrail.Evaluate(new UpdateReport(5, KlToReference: 2.5));
        var trip = guardrail.Evaluate(new UpdateReport(6, KlToReference: 2.6));
        Assert.Equal(GuardrailState.Tripped, trip.State);
        Assert.Equal(GuardrailAction.PauseUpdates, trip.Action);
        Assert.Contains(trip.Reasons, r => r.Contains("budget 2"));
        Assert.Equal(2.6, guardrail.Status.LastKlToReference);
        Assert.Equal(1, guardrail.Status.Trips[GuardrailChecks.KlBudget]);
    }

    [Fact]
    public void AnInfiniteKlBudgetDisablesTheCheck()
    {
        var guardrail = new Guardrail(Options() with { KlBudget = double.PositiveInfinity });
        for (var v = 1; v <= 5; v++) Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(v, KlToReference: 1e6)).State);
    }

    [Fact]
    public void AnAccurateRewardModelPassesTheAccuracyFloor()
    {
        var guardrail = new Guardrail(Options());
        var noise = new SeededNoise(6);
        for (var i = 0; i < 500; i++) guardrail.ObserveRewardModelPrediction(noise.Bernoulli(0.8));
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(1)).State);
        Assert.InRange(guardrail.Status.RewardModelAccuracy, 0.72, 0.88);
        Assert.Equal(200, guardrail.Status.AccuracyPairs);
    }

    [Fact]
    public void ARewardModelThatFallsBelowTheFloorTripsButOnlyAfterEnoughPairs()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.Alert) with { AccuracyWindow = 50, AccuracyMinPairs = 50 });
        var noise = new SeededNoise(7);
        for (var i = 0; i < 49; i++) guardrail.ObserveRewardModelPrediction(true);
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(1)).State); // 49 < AccuracyMinPairs
        guardrail.ObserveRewardModelPrediction(true);                                    // 50 pairs at 1.0: armed
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(2)).State);
        for (var i = 0; i < 50; i++) guardrail.ObserveRewardModelPrediction(noise.Bernoulli(0.3));
        var decision = guardrail.Evaluate(new UpdateReport(3));
        Assert.Equal(GuardrailState.Tripped, decision.State);
        Assert.Equal(GuardrailAction.Alert, decision.Action);
        Assert.Contains(decision.Reasons, r => r.StartsWith(GuardrailChecks.RewardModelAccuracy) && r.Contains("floor 0.40"));
    }

    [Fact]
    public void AFreshRewardModelIsAWarningNotATripUntilItHasOnceReachedTheFloorPlusMargin()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.Alert));
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 20 < 7);   // 0.35: below the floor, but never learned
        var learning = guardrail.Evaluate(new UpdateReport(1));
        Assert.Equal(GuardrailState.Warning, learning.State);
        Assert.Contains(learning.Reasons, r => r.StartsWith(GuardrailChecks.RewardModelAccuracy) && r.Contains("still learning"));
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 10 < 8);   // learned: 0.8 → armed
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(2)).State);
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 2 == 0);   // converged policy, near-tie pairs: 0.5 is no drift
        Assert.Equal(GuardrailState.Ok, guardrail.Evaluate(new UpdateReport(3)).State);
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 10 < 3);   // users turned away: 0.3
        var fell = guardrail.Evaluate(new UpdateReport(4));
        Assert.Equal(GuardrailState.Tripped, fell.State);
        Assert.Single(fell.Reasons, r => r.StartsWith(GuardrailChecks.RewardModelAccuracy + ":") && r.Contains("< floor")); // one current reason per check, not one per pair
    }

    [Fact]
    public void AccuracyJustAboveTheFloorIsAWarning()
    {
        var guardrail = new Guardrail(Options());
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 10 < 8);   // armed at 0.8
        for (var i = 0; i < 200; i++) guardrail.ObserveRewardModelPrediction(i % 100 < 43); // 0.43: above 0.40, within the 0.05 margin
        var near = guardrail.Evaluate(new UpdateReport(1));
        Assert.Equal(GuardrailState.Warning, near.State);
        Assert.Contains(near.Reasons, r => r.StartsWith(GuardrailChecks.RewardModelAccuracy) && r.Contains("0.430"));
        var healthy = new Guardrail(Options());
        for (var i = 0; i < 200; i++) healthy.ObserveRewardModelPrediction(i % 10 < 7); // 0.70
        Assert.Equal(GuardrailState.Ok, healthy.Evaluate(new UpdateReport(2)).State);
    }

    [Fact]
    public void NonFiniteMetricsRejectTheUpdateAndTripWhenRepeated()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.PauseUpdates) with { NonFiniteTripAfter = 3 });
        var first = guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN, GradNorm: 3));
        Assert.True(first.RejectUpdate);
        Assert.Equal(GuardrailState.Warning, first.State);
        Assert.Contains(first.Reasons, r => r.Contains("non-finite loss"));
        Assert.False(guardrail.Evaluate(new UpdateReport(2, Loss: 0.5)).RejectUpdate); // streak broken
        guardrail.Evaluate(new UpdateReport(3, GradNorm: double.PositiveInfinity));
        guardrail.Evaluate(new UpdateReport(4, KlToReference: double.NaN));
        var trip = guardrail.Evaluate(new UpdateReport(5, Entropy: double.NegativeInfinity));
        Assert.True(trip.RejectUpdate);
        Assert.Equal(GuardrailState.Tripped, trip.State);
        Assert.Equal(GuardrailAction.PauseUpdates, trip.Action);
        Assert.Contains(trip.Reasons, r => r.Contains("non-finite entropy"));
    }

    [Fact]
    public void RollbackWithNoGoodVersionPausesInstead()
    {
        var guardrail = new Guardrail(Options(GuardrailAction.Rollback) with { NonFiniteTripAfter = 1 });
        var decision = guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN));
        Assert.Equal(GuardrailAction.PauseUpdates, decision.Action);
        Assert.Null(decision.RollbackTo);
        Assert.Contains(decision.Reasons, r => r.Contains("no version has qualified as good"));
    }

    [Fact]
    public void ASecondTripWithinTheCooldownPausesInsteadOfRollingBackInALoop()
    {
        var clock = new ManualTimeProvider(Start);
        var guardrail = new Guardrail(Options(GuardrailAction.Rollback) with { NonFiniteTripAfter = 1, RollbackCooldown = TimeSpan.FromMinutes(30) }, clock, initialGood: 5);
        Assert.Equal(GuardrailAction.Rollback, guardrail.Evaluate(new UpdateReport(6, Loss: double.NaN)).Action);
        guardrail.RollbackCompleted(5);
        clock.Advance(TimeSpan.FromMinutes(10));
        var second = guardrail.Evaluate(new UpdateReport(6, Loss: double.NaN));
        Assert.Equal(GuardrailAction.PauseUpdates, second.Action);
        Assert.Contains(second.Reasons, r => r.Contains("rollback suppressed"));
        Assert.True(guardrail.UpdatesPaused);

        guardrail.Resume();
        clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(GuardrailAction.Rollback, guardrail.Evaluate(new UpdateReport(7, Loss: double.NaN)).Action);
    }

    [Fact]
    public void AlertOnlyActsOnceAndHoldsTheTrippedStateForTheHoldTime()
    {
        var clock = new ManualTimeProvider(Start);
        var guardrail = new Guardrail(Options(GuardrailAction.Alert) with { NonFiniteTripAfter = 1, AlertHold = TimeSpan.FromMinutes(15) }, clock, initialGood: 1);
        var trip = guardrail.Evaluate(new UpdateReport(2, Loss: double.NaN));
        Assert.Equal(GuardrailAction.Alert, trip.Action);
        Assert.True(trip.IsNewTrip);
        clock.Advance(TimeSpan.FromMinutes(5));
        var later = guardrail.Evaluate(new UpdateReport(3, Loss: 0.5));
        Assert.Equal(GuardrailState.Tripped, later.State);
        Assert.Equal(GuardrailAction.None, later.Action); // learning continues under alert-only
        Assert.False(guardrail.UpdatesPaused);
        guardrail.CheckpointWritten(3);
        clock.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(GuardrailState.Ok, guardrail.State);
        Assert.Equal(1, guardrail.Status.GoodVersion); // v3 was evaluated while tripped: never good
    }

    [Fact]
    public void PauseWithADurationResumesByItself()
    {
        var clock = new ManualTimeProvider(Start);
        var guardrail = new Guardrail(Options(GuardrailAction.PauseUpdates) with { NonFiniteTripAfter = 1, PauseDuration = TimeSpan.FromMinutes(20) }, clock);
        guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN));
        Assert.True(guardrail.UpdatesPaused);
        clock.Advance(TimeSpan.FromMinutes(19));
        Assert.True(guardrail.UpdatesPaused);
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.False(guardrail.UpdatesPaused);
        Assert.Equal(GuardrailAction.None, guardrail.Evaluate(new UpdateReport(2, Loss: 0.1)).Action);
    }

    [Fact]
    public void InvalidOptionsNameEveryProblem()
    {
        var errors = (Options() with
        {
            Action = GuardrailAction.None,
            KlBudget = -1,
            AccuracyMinPairs = 500,
            ModelReward = new DriftStreamOptions { TripOn = DriftDirection.None, Cusum = new CusumOptions { WarmUp = 0 } },
        }).Validate();
        Assert.Contains(errors, e => e.Contains("Guardrails:Action"));
        Assert.Contains(errors, e => e.Contains("Guardrails:KlBudget"));
        Assert.Contains(errors, e => e.Contains("Guardrails:AccuracyMinPairs"));
        Assert.Contains(errors, e => e.Contains("Guardrails:ModelReward.TripOn"));
        Assert.Contains(errors, e => e.Contains("Guardrails:ModelReward.Cusum.WarmUp"));
        Assert.Throws<ArgumentException>(() => new Guardrail(Options() with { KlBudget = 0 }));
        Assert.Empty(new GuardrailOptions().Validate());
    }
}
