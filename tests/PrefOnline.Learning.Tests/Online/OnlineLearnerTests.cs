using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Tests.Guardrails;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Online;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Learning.Tests.Training;
using PrefOnline.Tensors;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Online;

/// <summary>
/// The online learner driven directly, without Kafka or the worker's host: rollouts in, labels joined to them,
/// scoring into replay, an update judged by the guardrail, and the published-version bookkeeping.
/// </summary>
public sealed class OnlineLearnerTests : IDisposable
{
    private static readonly DateTimeOffset Generated = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly TensorThread thread = new("online-learner-test", intraOpThreads: 1);
    private readonly RecordingObserver observer = new();

    public void Dispose() => thread.Dispose();

    private OnlineLearner Create(string objective = ObjectiveNames.Dpo, TimeProvider? time = null, Guardrail? guardrail = null, Func<LearnerOptions, LearnerOptions>? cadence = null)
    {
        var policy = Policy(seed: 11);
        var reference = new ReferenceModel(policy);
        var rewardModel = RewardModel.FromPolicy(policy, 4);
        var reward = new RewardTrainerOptions();                                   // the worker's defaults: ratings in [-10, 10] over 8 logits
        var learner = LearnerTests.Base with { Objective = objective, LearningRate = 1e-3, WeightDecay = 0, KlCoefficient = 0 };
        if (cadence is not null) learner = cadence(learner);
        var replay = new ReplayOptions();
        var settings = new OnlineLearnerSettings(learner, reward, replay, TimeSpan.FromMinutes(10), 16, PolicyDecoderFactory.Default);
        return new OnlineLearner(settings, thread, guardrail ?? new Guardrail(new GuardrailOptions()), observer, time ?? TimeProvider.System,
            policy, Tokenizer, reference, rewardModel, new RewardTrainer(rewardModel, Tokenizer, reward), new Learner(policy, reference, Tokenizer, learner),
            new ReplayBuffer<Rollout>(replay.RolloutLimits), new ReplayBuffer<PreferencePair>(replay.HumanPairLimits),
            new PendingJoins(), 0, new Dictionary<long, long>(), new OnlineLearnerCounters());
    }

    private static ReceivedRollout Rollout(string id, string promptId, string completion, long version = 0) =>
        new(id, promptId, $"{promptId}:", completion, version, EndedWithEndOfSequence: true, Generated);

    private static RatingLabel Rating(string id, string rolloutId, string promptId, string completion, double reward) =>
        new(id, $"{promptId}:", completion, reward, rolloutId, Observed: true);

    [Fact]
    public async Task A_rating_joined_to_a_waiting_rollout_is_its_reward_and_the_reward_model_scores_the_others()
    {
        await thread.RunAsync(() =>
        {
            using var online = Create();
            Assert.True(online.AdmitReceived([Rollout("r1", "p", "good"), Rollout("r2", "p", "bad")]));
            Assert.Equal(2, online.PendingSnapshot);

            var absorbed = online.AbsorbLabels([], [Rating("l1", "r1", "p", "good", 10)]);
            var scored = online.ScoreDue(all: true);

            Assert.Equal((1, 1, 0), (absorbed.Ratings, absorbed.Joined, absorbed.Refused));
            Assert.Equal((1, 2, 1), (scored.Groups, scored.Rollouts, scored.HumanScored));
            var entries = online.Replay.Snapshot().ToDictionary(e => e.Item.Id);
            Assert.Equal(RewardSource.Human, entries["r1"].Item.RewardSource);
            Assert.Equal(4.0, entries["r1"].Item.Reward, 12);                      // rating 10 at the top of [-10, 10] is +8/2 logits
            Assert.Equal(RewardSource.Model, entries["r2"].Item.RewardSource);
            Assert.Equal(scored.ModelScores[1], entries["r2"].Item.Reward, 12);
            Assert.Equal([10.0], observer.Rewards(DriftSource.Human));
            Assert.Equal(2, observer.Rewards(DriftSource.Model).Count);
            Assert.Equal(2, observer.ReplaySize);
            Assert.Equal((1L, 0L, 2L, 1L), (online.Counters.LabelsJoined, online.Counters.LabelsUnjoined, online.Counters.RolloutsScored, online.Counters.RolloutsHumanScored));
            Assert.Equal(0, online.PendingSnapshot);
        });
    }

    [Fact]
    public async Task A_preference_orders_the_two_rollouts_it_names_and_enters_the_human_pair_buffer()
    {
        await thread.RunAsync(() =>
        {
            using var online = Create();
            online.AdmitReceived([Rollout("r1", "p", "aaa"), Rollout("r2", "p", "zzz")]);
            var before = online.RewardModel.Score(Tokenizer, [("p:", "aaa"), ("p:", "zzz")]);
            // The person prefers whichever the untrained reward model likes less, so the join must swap them.
            var (chosen, rejected) = before[0] < before[1] ? ("r1", "r2") : ("r2", "r1");
            string Text(string id) => id == "r1" ? "aaa" : "zzz";

            var absorbed = online.AbsorbLabels([new PreferenceLabel("l1", "p:", Text(chosen), Text(rejected), chosen, rejected, Observed: true)], []);
            online.ScoreDue(all: true);

            Assert.Equal((1, 1), (absorbed.Pairs, absorbed.Joined));
            Assert.Equal(1, online.HumanPairs.Count);
            var pair = online.HumanPairs.Snapshot().Single().Item;
            Assert.False(pair.ChosenTokens.IsEmpty);                                  // both rollouts were waiting: their exact tokens are trained on
            var entries = online.Replay.Snapshot().ToDictionary(e => e.Item.Id, e => e.Item);
            Assert.True(entries[chosen].Reward > entries[rejected].Reward);
            Assert.All(entries.Values, r => Assert.Equal(RewardSource.Human, r.RewardSource));
        });
    }

    [Fact]
    public async Task An_accepted_update_takes_the_next_published_version_and_rollouts_of_that_version_are_dated_by_its_update_count()
    {
        await thread.RunAsync(() =>
        {
            using var online = Create();
            online.AdoptFirstVersion(3);
            for (var p = 0; p < 4; p++)
            {
                online.AdmitReceived([Rollout($"r{p}a", $"p{p}", "good", version: 3), Rollout($"r{p}b", $"p{p}", "bad", version: 3)]);
                online.AbsorbLabels([], [Rating($"l{p}a", $"r{p}a", $"p{p}", "good", 8), Rating($"l{p}b", $"r{p}b", $"p{p}", "bad", -8)]);
            }
            online.ScoreDue(all: true);
            Assert.Equal(8, online.FreshSnapshot);

            var cycle = online.RunUpdate(() => 7, holdModelReward: false, CancellationToken.None);

            Assert.True(cycle.Accepted, cycle.Decision?.ToString());
            Assert.Equal((7L, 1L), (online.PolicyVersion, online.UpdateCount));
            Assert.Equal(1L, online.VersionMap[7]);
            Assert.Equal(0L, online.VersionMap[3]);
            Assert.Equal(1L, online.Counters.UpdatesAccepted);

            online.AdmitReceived([Rollout("late", "q", "text", version: 7), Rollout("old", "q", "text2", version: 3)]);
            online.ScoreDue(all: true);
            var dated = online.Replay.Snapshot().Where(e => e.Item.PromptId == "q").ToDictionary(e => e.Item.Id, e => e.Item.UpdateCount);
            Assert.Equal(1L, dated["late"]);
            Assert.Equal(0L, dated["old"]);
        });
    }

    [Fact]
    public async Task A_quiesced_learner_admits_nothing_and_generates_nothing_and_every_call_belongs_to_the_tensor_thread()
    {
        var online = await thread.RunAsync(() => Create());
        try
        {
            Assert.Throws<InvalidOperationException>(() => online.ScoreDue());
            await thread.RunAsync(() =>
            {
                online.Quiesce();
                Assert.False(online.AdmitReceived([Rollout("r1", "p", "x")]));
                Assert.Empty(online.Generate(["p:"], new SamplingOptions { SamplesPerPrompt = 2, MaxNewTokens = 4 }, CancellationToken.None));
                Assert.Equal(0, online.PendingSnapshot);
            });
        }
        finally
        {
            await thread.RunAsync(online.Dispose);
        }
    }

    [Fact]
    public async Task An_update_is_due_after_UpdateEverySamples_fresh_rollouts_or_after_the_interval_with_MinSamples_and_a_skip_restarts_the_interval()
    {
        var clock = new ManualTimeProvider(Generated);
        await thread.RunAsync(() =>
        {
            // N = 4 fresh rollouts, S = 10 s, at least 2 fresh for an interval-triggered update.
            using var online = Create(time: clock, cadence: o => o with { UpdateEverySamples = 4, UpdateInterval = TimeSpan.FromSeconds(10), MinSamples = 2 });
            Assert.Equal(UpdateDecision.NotDue, online.DecideUpdate());

            Score(online, "a", 1);                                                   // 1 fresh
            clock.Advance(TimeSpan.FromSeconds(9.9));
            Assert.Equal(UpdateDecision.NotDue, online.DecideUpdate());             // 9.9 s < 10 s, 1 < 4
            clock.Advance(TimeSpan.FromSeconds(0.1));
            Assert.Equal(UpdateDecision.SkippedTooFewSamples, online.DecideUpdate()); // 10 s, but 1 < MinSamples 2
            Assert.Equal(UpdateDecision.NotDue, online.DecideUpdate());             // the skip restarted the interval

            Score(online, "b", 1);                                                   // 2 fresh
            clock.Advance(TimeSpan.FromSeconds(9));
            Assert.Equal(UpdateDecision.NotDue, online.DecideUpdate());             // 9 s since the skip
            clock.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(UpdateDecision.DueByInterval, online.DecideUpdate());      // 10 s with 2 >= MinSamples
            Assert.Equal(UpdateDecision.DueByInterval, online.DecideUpdate());      // due stays due until an update runs

            Score(online, "c", 2);                                                   // 4 fresh = N: due at once, whatever the clock
            Assert.Equal(UpdateDecision.DueByCount, online.DecideUpdate());

            var cycle = online.RunUpdate(() => 1, holdModelReward: false, CancellationToken.None);
            Assert.True(cycle.Update.Applied, cycle.Update.SkipReason.ToString());
            Assert.True(online.FreshSnapshot < 2, $"{online.FreshSnapshot} fresh rollouts left after the update");
            Assert.Equal(UpdateDecision.NotDue, online.DecideUpdate());             // the update restarted the interval
            clock.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(UpdateDecision.SkippedTooFewSamples, online.DecideUpdate());
        });
    }

    [Fact]
    public async Task A_due_update_is_skipped_while_the_guardrail_pauses_updates_and_due_again_once_resumed()
    {
        var clock = new ManualTimeProvider(Generated);
        var guardrail = new Guardrail(new GuardrailOptions { Action = GuardrailAction.PauseUpdates, NonFiniteTripAfter = 2 }, clock);
        await thread.RunAsync(() =>
        {
            using var online = Create(time: clock, guardrail: guardrail, cadence: o => o with { UpdateEverySamples = 2, UpdateInterval = TimeSpan.FromSeconds(10), MinSamples = 1 });
            Score(online, "a", 2);
            Assert.Equal(UpdateDecision.DueByCount, online.DecideUpdate());

            guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN));             // two non-finite updates in a row trip it
            guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN));
            Assert.True(guardrail.UpdatesPaused);
            Assert.Equal(UpdateDecision.SkippedPaused, online.DecideUpdate());      // due by count: skipped at every decision while paused
            Assert.Equal(UpdateDecision.SkippedPaused, online.DecideUpdate());

            guardrail.Resume();
            Assert.Equal(UpdateDecision.DueByCount, online.DecideUpdate());
        });
    }

    /// <summary><paramref name="count"/> rollouts of prompt <paramref name="prompt"/> admitted and scored at once: that many fresh in replay.</summary>
    private static void Score(OnlineLearner online, string prompt, int count)
    {
        var before = online.FreshSnapshot;
        Assert.True(online.AdmitReceived(Enumerable.Range(0, count).Select(i => Rollout($"{prompt}{i}", prompt, $"text {i}")).ToList()));
        online.ScoreDue(all: true);
        Assert.Equal(before + count, online.FreshSnapshot);
    }

    private sealed class RecordingObserver : IOnlineLearnerObserver
    {
        private readonly List<(DriftSource Source, double Reward)> rewards = [];

        public long ReplaySize { get; private set; }

        public void ObserveReward(DriftSource source, double reward) => rewards.Add((source, reward));

        public void SetReplaySize(long samples) => ReplaySize = samples;

        public List<double> Rewards(DriftSource source) => rewards.Where(r => r.Source == source).Select(r => r.Reward).ToList();
    }
}
