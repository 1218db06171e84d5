using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Tensors;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Online;

/// <summary>
/// The online learner: everything that learns from users' labels, and the only code that changes it — the
/// policy and its frozen reference, the reward model and its trainer, the policy's <see cref="Training.Learner"/>
/// (optimizer, KL controller), the replay buffers, the rollouts waiting for labels (<see cref="PendingJoins"/>),
/// and the published policy version with its map to update counts. Its surface:
/// <list type="bullet">
/// <item><b>admit rollouts</b> — <see cref="AdmitGenerated"/> (sampled here), <see cref="AdmitReceived"/> (sampled by
///   a generator process): they wait <c>LabelWait</c> for their users' labels;</item>
/// <item><b>absorb labels</b> — <see cref="AbsorbLabels"/>: the reward model learns them, human pairs go to their
///   buffer, and each joins the waiting rollouts it names;</item>
/// <item><b>score</b> — <see cref="ScoreDue"/>: a joined label is a rollout's reward, else the reward model's score;
///   scored rollouts enter replay;</item>
/// <item><b>decide and run an update</b> — <see cref="DecideUpdate"/>: whether one is due now (by count, by
///   interval, or skipped: paused by the guardrail, too few samples); <see cref="RunUpdate"/>: one learner update
///   judged by the guardrail;</item>
/// <item><b>snapshot/restore</b> — its parts are read and rebuilt by the host's checkpoint files.</item>
/// </list>
/// </summary>
/// <remarks>
/// <para><b>Single writer.</b> Every member must be called on the one <see cref="TensorThread"/> (checked), which
/// runs work items one at a time, so a snapshot taken by one work item sees the state between two changes.</para>
/// <para><b>Two numbers, two names.</b> <see cref="PolicyVersion"/> is the published version (a checkpoint version:
/// unique, monotonic, what rollout records and policy events carry). <see cref="UpdateCount"/> (the learner's
/// <see cref="Learner.UpdateCount"/>) stamps replay items, because staleness is counted in updates;
/// <see cref="VersionMap"/> maps the first to the second.</para>
/// </remarks>
public sealed class OnlineLearner : IDisposable
{
    private readonly OnlineLearnerSettings settings;
    private readonly TensorThread thread;
    private readonly Guardrail guardrail;
    private readonly IOnlineLearnerObserver observer;
    private readonly TimeProvider time;
    private readonly PolicyVersionMap versionMap;
    private PolicySampler? sampler;
    private bool disposed;
    private int freshSnapshot;
    private int pendingSnapshot;
    private long lastUpdateDecision;

    /// <summary>Takes ownership of the models, trainers and buffers (disposed with it).</summary>
    public OnlineLearner(
        OnlineLearnerSettings settings, TensorThread thread, Guardrail guardrail, IOnlineLearnerObserver observer, TimeProvider time,
        PolicyModel policy, ITokenizer tokenizer, ReferenceModel reference, RewardModel rewardModel,
        RewardTrainer rewardTrainer, Learner learner, ReplayBuffer<Rollout> replay, ReplayBuffer<PreferencePair> humanPairs,
        PendingJoins pending, long policyVersion, IReadOnlyDictionary<long, long> versions, OnlineLearnerCounters counters)
    {
        this.settings = settings;
        this.thread = thread;
        this.guardrail = guardrail;
        this.observer = observer;
        this.time = time;
        Policy = policy;
        Tokenizer = tokenizer;
        Reference = reference;
        RewardModel = rewardModel;
        RewardTrainer = rewardTrainer;
        Learner = learner;
        Replay = replay;
        HumanPairs = humanPairs;
        Pending = pending;
        PolicyVersion = policyVersion;
        versionMap = new PolicyVersionMap(versions, policyVersion, learner.UpdateCount);
        Counters = counters;
        lastUpdateDecision = time.GetTimestamp();
        PublishGauges();
    }

    public PolicyModel Policy { get; }

    public ITokenizer Tokenizer { get; }

    public ReferenceModel Reference { get; }

    public RewardModel RewardModel { get; }

    public RewardTrainer RewardTrainer { get; }

    public Learner Learner { get; }

    public ReplayBuffer<Rollout> Replay { get; }

    public ReplayBuffer<PreferencePair> HumanPairs { get; }

    public PendingJoins Pending { get; }

    /// <summary>The published version of the policy's current weights.</summary>
    public long PolicyVersion { get; private set; }

    /// <summary>The learner's update counter, which replay items are stamped with.</summary>
    public long UpdateCount => Learner.UpdateCount;

    public OnlineLearnerCounters Counters { get; private set; }

    /// <summary>Published version → learner update counter, for the versions this learner published (bounded).</summary>
    public IReadOnlyDictionary<long, long> VersionMap => versionMap.Entries;

    /// <summary>
    /// True after an update was refused (rolled back, rejected, paused) until the host reloads a
    /// checkpoint: the in-memory weights are not a published version, so nothing may be generated from them.
    /// </summary>
    public bool Quiesced { get; private set; }

    /// <summary>Fresh (never trained on) rollouts in replay, as of the last change; readable from any thread.</summary>
    public int FreshSnapshot => Volatile.Read(ref freshSnapshot);

    /// <summary>Rollouts waiting for labels, as of the last change; readable from any thread.</summary>
    public int PendingSnapshot => Volatile.Read(ref pendingSnapshot);

    /// <summary>Pulsed after every change of the counts above (the update cadence and the sample budget wait on it).</summary>
    public AsyncSignal Changed { get; } = new();

    // ---- generation ------------------------------------------------------------------------------

    /// <summary>K samples for each prompt from the current weights; empty while <see cref="Quiesced"/>.</summary>
    public IReadOnlyList<SampledCompletion> Generate(IReadOnlyList<string> prompts, SamplingOptions options, CancellationToken cancellationToken)
    {
        VerifyAccess();
        if (Quiesced) return [];
        sampler ??= PolicySampler.Create(Policy, Tokenizer, () => PolicyVersion, settings.Decoders);
        var wasTraining = Policy.training;
        try
        {
            return sampler.Sample(prompts, options, cancellationToken);
        }
        finally
        {
            Policy.train(wasTraining);
        }
    }

    /// <summary>
    /// Groups sampled from this learner's weights (published version <paramref name="policyVersion"/>, after
    /// <paramref name="updateCount"/> updates) join the rollouts waiting for labels (deadline: now + LabelWait).
    /// Refused (false) while <see cref="Quiesced"/>: they came from weights that have since been refused.
    /// </summary>
    public bool AdmitGenerated(IReadOnlyList<GeneratedGroup> groups, long policyVersion, long updateCount, DateTimeOffset generatedAt)
    {
        VerifyAccess();
        if (Quiesced) return false;
        var deadline = Deadline();
        var admitted = 0;
        foreach (var generated in groups)
        {
            var key = GroupKey(generated.PromptId, policyVersion);
            for (var k = 0; k < generated.Completions.Count; k++)
            {
                var c = generated.Completions[k];
                if (c.Tokens.Length == 0)
                {
                    Counters = Counters with { RolloutsDropped = Counters.RolloutsDropped + 1 }; // a stop string at the very start: nothing to train on
                    continue;
                }
                Pending.Add(new Rollout
                {
                    Id = generated.RolloutIds[k],
                    PromptId = generated.PromptId,
                    Prompt = generated.Prompt,
                    Completion = c.Text,
                    PromptTokens = [.. c.PromptTokens],
                    CompletionTokens = [.. c.Tokens],
                    BehaviourLogProbs = [.. c.PolicyLogProbs],
                    Reward = 0,
                    RewardSource = RewardSource.Model,
                    UpdateCount = updateCount,
                    GeneratedAt = generatedAt,
                    ScoredAt = generatedAt,
                }, key, deadline);
                admitted++;
            }
        }
        Counters = Counters with { PromptsAbsorbed = Counters.PromptsAbsorbed + groups.Count, RolloutsAdmitted = Counters.RolloutsAdmitted + admitted };
        PublishGauges();
        return true;
    }

    /// <summary>
    /// Rollouts generated elsewhere join the waiting rollouts. Their text is tokenized (with the end-of-sequence
    /// token appended only when the generator's policy sampled it; a completion cut at the token limit did not
    /// choose to end) and their per-token behaviour log-probs are recomputed with the current policy (a rollout
    /// record carries only their sum); their update count is the learner update that published their policy
    /// version (or the nearest older one). Refused (false) while <see cref="Quiesced"/>.
    /// </summary>
    public bool AdmitReceived(IReadOnlyList<ReceivedRollout> rollouts)
    {
        VerifyAccess();
        if (Quiesced) return false;
        if (rollouts.Count == 0) return true;
        var rows = rollouts.Select(r => (Prompt: SequenceBatch.EncodePrompt(Tokenizer, r.Prompt),
            Completion: r.EndedWithEndOfSequence ? (int[])[.. Tokenizer.Encode(r.Completion), Tokenizer.EndOfSequenceId] : Tokenizer.Encode(r.Completion))).ToList();
        var logProbs = BehaviourLogProbs(rows);
        var deadline = Deadline();
        var now = time.GetUtcNow();
        for (var i = 0; i < rollouts.Count; i++)
        {
            var received = rollouts[i];
            var (prompt, completion) = rows[i];
            var kept = logProbs[i];
            Pending.Add(new Rollout
            {
                Id = received.Id,
                PromptId = received.PromptId,
                Prompt = received.Prompt,
                Completion = received.Completion,
                PromptTokens = [.. prompt],
                CompletionTokens = [.. completion[..kept.Length]], // an over-long completion keeps what the context holds
                BehaviourLogProbs = [.. kept],
                Reward = 0,
                RewardSource = RewardSource.Model,
                UpdateCount = versionMap.UpdateCountOf(received.PolicyVersion),
                GeneratedAt = received.GeneratedAt,
                ScoredAt = now,
            }, GroupKey(received.PromptId, received.PolicyVersion), deadline);
        }
        Counters = Counters with { RolloutsAdmitted = Counters.RolloutsAdmitted + rollouts.Count };
        PublishGauges();
        return true;
    }

    private float[][] BehaviourLogProbs(IReadOnlyList<(int[] Prompt, int[] Completion)> rows)
    {
        var result = new float[rows.Count][];
        var wasTraining = Policy.training;
        Policy.eval();
        try
        {
            using var noGrad = no_grad();
            const int chunk = 32;
            for (var start = 0; start < rows.Count; start += chunk)
            {
                using var scope = NewDisposeScope();
                var part = rows.Skip(start).Take(chunk).ToList();
                using var batch = SequenceBatch.FromTokens(part, Policy.Config.ContextLength, Tokenizer.PaddingId);
                var values = SequenceLogProbs.Compute(Policy, batch, LogProbReduction.Sum).TokenLogProbs.data<float>().ToArray(); // (B, Tc) flattened
                var width = values.Length / part.Count;
                for (var i = 0; i < part.Count; i++)
                {
                    var length = batch.CompletionLengths[i];
                    var row = new float[length];
                    Array.Copy(values, i * width, row, 0, length);
                    for (var j = 0; j < length; j++) row[j] = Math.Min(0f, row[j]); // rounding can leave +1e-8
                    result[start + i] = row;
                }
            }
        }
        finally
        {
            Policy.train(wasTraining);
        }
        return result;
    }

    // ---- labels ---------------------------------------------------------------------------------

    /// <summary>
    /// Absorbs labels: each preference pair is first judged by the current reward model (the verdict goes
    /// to the guardrail's accuracy check before the model learns from it, once the model is past its warm-up),
    /// queued for reward-model training, put in the human-pair buffer, and joined to the waiting rollouts it
    /// names; each rating feeds the human drift detector, is queued for training and joined likewise. Labels
    /// not <c>Observed</c> are absorbed the same way but not judged. Labels naming unknown rollouts (e.g.
    /// generated before a restart) are used all the same: they are self-contained. Then the reward model trains
    /// on every full batch of queued labels.
    /// </summary>
    public LabelsAbsorbed AbsorbLabels(IReadOnlyList<PreferenceLabel> preferences, IReadOnlyList<RatingLabel> ratings)
    {
        VerifyAccess();
        var now = time.GetUtcNow();
        var refusals = new List<RefusedLabel>();
        int joined = 0;
        var pairs = preferences.Select(p => ToPair(p, now)).ToList();
        var intakes = pairs.Count > 0 ? RewardTrainer.AddPairs(pairs) : [];
        for (var i = 0; i < pairs.Count; i++)
        {
            var (pair, label, intake) = (pairs[i], preferences[i], intakes[i]);
            if (intake.Agreed is { } agreed && RewardTrainer.Counters.LabelsTrained >= settings.Reward.GuardrailWarmUpLabels && label.Observed)
                guardrail.ObserveRewardModelPrediction(agreed);
            if (intake.Route == LabelRoute.Rejected)
            {
                refusals.Add(new RefusedLabel(label.Id, intake.Problem, null)); // e.g. chosen == rejected: it neither trains nor orders the rollouts it names
                continue;
            }
            if (settings.Learner.HumanPairsPerUpdate > 0) HumanPairs.Add(pair, UpdateCount);
            if (label is { ChosenRolloutId: { } chosen, RejectedRolloutId: { } rejected }
                && Pending.TryJoinPreference(chosen, rejected, label.Prompt, label.Chosen, label.Rejected)) joined++;
        }

        foreach (var rating in ratings)
        {
            var route = RewardTrainer.AddRating(new Rating { Id = rating.Id, Prompt = rating.Prompt, Completion = rating.Completion, Value = rating.Reward, RolloutId = rating.RolloutId });
            if (route == LabelRoute.Rejected)
            {
                // Unreachable from the worker's intake, which dead-letters ratings off the scale (out-of-range);
                // a refused rating must not reach the drift detector either.
                refusals.Add(new RefusedLabel(rating.Id, null, rating.Reward));
                continue;
            }
            if (rating.Observed)
            {
                observer.ObserveReward(DriftSource.Human, rating.Reward);
                guardrail.ObserveHumanRating(rating.Reward);
            }
            var target = RewardTrainer.Options.RatingTarget(rating.Reward);
            if (rating.RolloutId is { } rolloutId && Pending.TryJoinRating(rolloutId, rating.Prompt, rating.Completion, target)) joined++;
        }

        var steps = RewardTrainer.Train();
        var refused = refusals.Count;
        Counters = Counters with
        {
            PairsAbsorbed = Counters.PairsAbsorbed + pairs.Count,
            RatingsAbsorbed = Counters.RatingsAbsorbed + ratings.Count,
            LabelsJoined = Counters.LabelsJoined + joined,
            LabelsUnjoined = Counters.LabelsUnjoined + (pairs.Count + ratings.Count - joined - refused),
            LabelsRefused = Counters.LabelsRefused + refused,
        };
        PublishGauges();
        return new LabelsAbsorbed(pairs.Count, ratings.Count, joined, refused, steps.Count, steps.Count > 0 ? steps[^1].Loss : null) { Refusals = refusals };
    }

    private PreferencePair ToPair(PreferenceLabel label, DateTimeOffset now)
    {
        // When both rollouts are waiting here, train on their exact sampled tokens rather than a re-tokenization.
        var chosen = label.ChosenRolloutId is { } c && label.RejectedRolloutId is not null ? Pending.Find(c) : null;
        var rejected = label.RejectedRolloutId is { } r && label.ChosenRolloutId is not null ? Pending.Find(r) : null;
        var exact = chosen is not null && rejected is not null && chosen.Completion == label.Chosen && rejected.Completion == label.Rejected
                    && chosen.Prompt == label.Prompt && chosen.PromptTokens.SequenceEqual(rejected.PromptTokens);
        return new PreferencePair
        {
            Id = label.Id,
            PromptId = exact ? chosen!.PromptId : null,
            Prompt = label.Prompt,
            Chosen = label.Chosen,
            Rejected = label.Rejected,
            PromptTokens = exact ? chosen!.PromptTokens : [],
            ChosenTokens = exact ? chosen!.CompletionTokens : [],
            RejectedTokens = exact ? rejected!.CompletionTokens : [],
            Source = PairSource.Human,
            ChosenRolloutId = label.ChosenRolloutId,
            RejectedRolloutId = label.RejectedRolloutId,
            UpdateCount = UpdateCount,
            ReceivedAt = now,
        };
    }

    // ---- scoring --------------------------------------------------------------------------------

    /// <summary>
    /// Scores the groups whose wait is over (all of them with <paramref name="all"/>) and adds them to the
    /// replay buffer. A joined rating gives a rollout its reward; otherwise the reward model scores it; a
    /// joined preference then fixes the order of the two rollouts it names (their scores are swapped when
    /// the model disagrees with the person, keeping the model's scale).
    /// </summary>
    public ScoringResult ScoreDue(bool all = false)
    {
        VerifyAccess();
        var due = all ? Pending.TakeAll() : Pending.TakeDue(time.GetTimestamp());
        if (due.Count == 0) return ScoringResult.None;
        var rollouts = due.SelectMany(g => g.Rollouts).ToList();
        var scores = RewardModel.Score(Tokenizer, rollouts.Select(r => (r.Rollout.Prompt, r.Rollout.Completion)).ToList(), settings.RewardBatchSize);
        var now = time.GetUtcNow();
        int index = 0, human = 0, scored = 0;
        var modelScores = new List<double>(rollouts.Count);
        foreach (var group in due)
        {
            var rewards = new double[group.Rollouts.Count];
            var sources = new RewardSource[group.Rollouts.Count];
            for (var i = 0; i < group.Rollouts.Count; i++, index++)
            {
                modelScores.Add(scores[index]);
                var rated = group.Rollouts[i].HumanReward;
                rewards[i] = rated ?? scores[index];
                sources[i] = rated is null ? RewardSource.Model : RewardSource.Human;
            }
            foreach (var (chosen, rejected) in group.HumanOrder)
            {
                if (group.Rollouts[chosen].HumanReward is not null && group.Rollouts[rejected].HumanReward is not null) continue; // two ratings already decide
                if (rewards[chosen] < rewards[rejected]) (rewards[chosen], rewards[rejected]) = (rewards[rejected], rewards[chosen]);
                sources[chosen] = sources[rejected] = RewardSource.Human;
            }
            for (var i = 0; i < group.Rollouts.Count; i++)
            {
                var rollout = group.Rollouts[i].Rollout with { Reward = rewards[i], RewardSource = sources[i], ScoredAt = now };
                Replay.Add(rollout, rollout.UpdateCount);
                scored++;
                if (sources[i] == RewardSource.Human) human++;
            }
        }
        Counters = Counters with { RolloutsScored = Counters.RolloutsScored + scored, RolloutsHumanScored = Counters.RolloutsHumanScored + human };
        foreach (var score in modelScores) observer.ObserveReward(DriftSource.Model, score);
        PublishGauges();
        return new ScoringResult(due.Count, scored, human, 0, modelScores);
    }

    // ---- updates --------------------------------------------------------------------------------

    /// <summary>
    /// Whether an update is due now: after <see cref="LearnerOptions.UpdateEverySamples"/> fresh scored rollouts
    /// (<see cref="UpdateDecision.DueByCount"/>), or once <see cref="LearnerOptions.UpdateInterval"/> has passed since
    /// the last update or skip with at least <see cref="LearnerOptions.MinSamples"/> fresh ones
    /// (<see cref="UpdateDecision.DueByInterval"/>; fewer: <see cref="UpdateDecision.SkippedTooFewSamples"/>). While the
    /// guardrail pauses updates a due update is <see cref="UpdateDecision.SkippedPaused"/>. A skip starts the interval
    /// again, as <see cref="RunUpdate"/> does when it ends: a skip is counted once per interval, not at every call.
    /// </summary>
    public UpdateDecision DecideUpdate()
    {
        VerifyAccess();
        var fresh = Replay.FreshCount;
        var dueByCount = fresh >= settings.Learner.UpdateEverySamples;
        var dueByInterval = time.GetElapsedTime(lastUpdateDecision) >= settings.Learner.UpdateInterval;
        if (!dueByCount && !dueByInterval) return UpdateDecision.NotDue;
        if (guardrail.UpdatesPaused)
        {
            lastUpdateDecision = time.GetTimestamp();
            return UpdateDecision.SkippedPaused;
        }
        if (!dueByCount && fresh < settings.Learner.MinSamples)
        {
            lastUpdateDecision = time.GetTimestamp();
            return UpdateDecision.SkippedTooFewSamples;
        }
        return dueByCount ? UpdateDecision.DueByCount : UpdateDecision.DueByInterval;
    }

    /// <summary>
    /// One learner update and its guardrail verdict, in one work item so nothing is generated from
    /// unjudged weights. Accepted: the weights become <paramref name="nextVersion"/> (the checkpoint
    /// about to be written). Refused after the weights changed (rollback, reject, pause): the learner
    /// quiesces until the host reloads a checkpoint. With <paramref name="holdModelReward"/> (labels are being
    /// read again after a rollback, so the reward model relearns them and its scores move for that reason
    /// alone) the model-reward detector is not fed.
    /// </summary>
    public UpdateCycle RunUpdate(Func<long> nextVersion, bool holdModelReward, CancellationToken cancellationToken)
    {
        VerifyAccess();
        var started = time.GetTimestamp();
        var update = Learner.Update(Replay, HumanPairs, cancellationToken);
        var duration = time.GetElapsedTime(started);
        lastUpdateDecision = time.GetTimestamp();
        PublishGauges();
        if (update.SkipReason == LearnerSkipReason.EmptyBatch) return new UpdateCycle(update, null, false, false, PolicyVersion, duration);

        var predicted = nextVersion();
        var report = update.Applied
            ? update.ToReport() with { PolicyVersion = predicted }
            : new UpdateReport(predicted, Loss: double.NaN); // a step the NaN guard skipped: the guardrail counts the streak
        if (holdModelReward && report.MeanReward is { } mean && double.IsFinite(mean)) report = report with { MeanReward = null };
        var decision = guardrail.Evaluate(report);
        if (!update.Applied) return new UpdateCycle(update, decision, false, false, PolicyVersion, duration); // weights untouched

        var refused = decision.RejectUpdate
                      || decision.Action == GuardrailAction.PauseUpdates
                      || (decision.Action == GuardrailAction.Rollback && decision.RollbackTo is not null);
        if (refused)
        {
            Quiesced = true;
            return new UpdateCycle(update, decision, false, true, PolicyVersion, duration);
        }
        PolicyVersion = predicted;
        versionMap.Publish(predicted, Learner.UpdateCount);
        Counters = Counters with { UpdatesAccepted = Counters.UpdatesAccepted + 1 };
        return new UpdateCycle(update, decision, true, false, PolicyVersion, duration);
    }

    /// <summary>
    /// Names the weights of a learner that has never been checkpointed (policy version 0) with the version
    /// of its first checkpoint, about to be written.
    /// </summary>
    public void AdoptFirstVersion(long version)
    {
        VerifyAccess();
        if (PolicyVersion != 0) throw new InvalidOperationException($"the state already carries policy version {PolicyVersion}");
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        PolicyVersion = version;
        versionMap.AdoptFirst(version, Learner.UpdateCount);
    }

    /// <summary>Marks the learner unusable for generation until the host reloads (a rollback requested from outside).</summary>
    public void Quiesce()
    {
        VerifyAccess();
        Quiesced = true;
    }

    /// <summary>Throws unless called on the tensor thread of a learner not yet disposed.</summary>
    public void VerifyAccess()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        thread.VerifyAccess();
    }

    private long Deadline() => time.GetTimestamp() + (long)(settings.LabelWait.TotalSeconds * time.TimestampFrequency);

    private static string GroupKey(string promptId, long version) => $"{promptId}@{version}";

    /// <summary>Publishes the replay gauge and the cross-thread counts (after any change).</summary>
    private void PublishGauges()
    {
        observer.SetReplaySize(Replay.Count);
        Volatile.Write(ref freshSnapshot, Replay.FreshCount);
        Volatile.Write(ref pendingSnapshot, Pending.RolloutCount);
        Changed.Pulse();
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        sampler?.Dispose();
        Learner.Dispose();
        RewardTrainer.Dispose();
        RewardModel.Dispose();
        Reference.Dispose();
        Policy.Dispose();
    }
}
