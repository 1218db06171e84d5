using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
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
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Worker.Observability;
using PreferencePair = PrefOnline.Learning.TrainingData.PreferencePair;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Everything the learner's checkpoints hold, and the only code that changes it: policy, frozen
/// reference, reward model and its trainer, the policy's learner (optimizer, KL controller), the replay
/// buffers, the rollouts waiting for labels, and the published policy version.
/// </summary>
/// <remarks>
/// <para><b>Single writer.</b> Every member must be called on the worker's one <see cref="TensorThread"/>
/// (checked), which runs work items one at a time. A checkpoint is staged by one such work item, so it
/// sees the state between two mutations: a consistent snapshot.</para>
/// <para><b>Absorbed means inside this state.</b> Each method that takes input records completes them in
/// their <see cref="OffsetTracker"/> in the same work item that applies their effect, so the offsets a
/// checkpoint records are exactly those whose effects it holds: a prompt once its K rollouts wait here
/// (<see cref="AdmitGenerated"/>), a rollout record once it waits here (<see cref="AdmitRolloutRecords"/>),
/// a label once the reward trainer has it queued, the human-pair buffer holds it and any join is made
/// (<see cref="AbsorbLabels"/>).</para>
/// <para><b>Two numbers, two names.</b> <see cref="PolicyVersion"/> is the published version (a checkpoint version:
/// unique, monotonic, what rollout records and policy events carry). <see cref="UpdateCount"/> (the learner's
/// <see cref="Learner.UpdateCount"/>) stamps replay items, because staleness is counted in updates;
/// <see cref="VersionMap"/> maps the first to the second.</para>
/// </remarks>
public sealed class LearningState : IDisposable
{
    private readonly LearningStateSettings settings;
    private readonly TensorThread thread;
    private readonly Guardrail guardrail;
    private readonly PrefOnlineMetrics metrics;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly PolicyVersionMap versionMap;
    private PolicySampler? sampler;
    private bool disposed;

    internal LearningState(
        LearningStateSettings settings, TensorThread thread, Guardrail guardrail, PrefOnlineMetrics metrics, TimeProvider time, ILogger logger,
        PolicyModel policy, ITokenizer tokenizer, ReferenceModel reference, string referenceFile, RewardModel rewardModel,
        RewardTrainer rewardTrainer, Learner learner, ReplayBuffer<Rollout> replay, ReplayBuffer<PreferencePair> humanPairs,
        PendingJoins pending, long policyVersion, IReadOnlyDictionary<long, long> versions, WorkerStateCounters counters)
    {
        this.settings = settings;
        this.thread = thread;
        this.guardrail = guardrail;
        this.metrics = metrics;
        this.time = time;
        this.logger = logger;
        Policy = policy;
        Tokenizer = tokenizer;
        Reference = reference;
        ReferenceFile = referenceFile;
        RewardModel = rewardModel;
        RewardTrainer = rewardTrainer;
        Learner = learner;
        Replay = replay;
        HumanPairs = humanPairs;
        Pending = pending;
        PolicyVersion = policyVersion;
        versionMap = new PolicyVersionMap(versions, policyVersion, learner.UpdateCount);
        Counters = counters;
        Audit = settings.Worker.AuditAbsorbedLabels ? new LabelAudit() : null;
        PublishGauges();
    }

    public PolicyModel Policy { get; }

    public ITokenizer Tokenizer { get; }

    public ReferenceModel Reference { get; }

    /// <summary>The reference's weights as a file (staged once per run; copied into every checkpoint).</summary>
    public string ReferenceFile { get; }

    public RewardModel RewardModel { get; }

    public RewardTrainer RewardTrainer { get; }

    public Learner Learner { get; }

    public ReplayBuffer<Rollout> Replay { get; }

    public ReplayBuffer<PreferencePair> HumanPairs { get; }

    public PendingJoins Pending { get; }

    /// <summary>The opt-in label audit (null when off).</summary>
    public LabelAudit? Audit { get; }

    /// <summary>Which absorbed labels the guardrail judges (all, except replays and the abandoned line's after a rollback).</summary>
    public LabelObservationFilter Observation { get; internal set; } = new();

    /// <summary>The published version of the policy's current weights.</summary>
    public long PolicyVersion { get; private set; }

    public WorkerStateCounters Counters { get; private set; }

    /// <summary>Published version → learner update counter, for the versions this learner published (bounded).</summary>
    public IReadOnlyDictionary<long, long> VersionMap => versionMap.Entries;

    /// <summary>
    /// True after an update was refused (rolled back, rejected, paused) until the pipeline reloads a
    /// checkpoint: the in-memory weights are not a published version, so nothing may be generated from them.
    /// </summary>
    public bool Quiesced { get; private set; }

    // ---- generation (role all) -----------------------------------------------------------------

    /// <summary>K samples for each prompt from the current weights; empty while <see cref="Quiesced"/>.</summary>
    public IReadOnlyList<SampledCompletion> Generate(IReadOnlyList<string> prompts, SamplingOptions options, CancellationToken cancellationToken)
    {
        Enter();
        if (Quiesced) return [];
        sampler ??= PolicySampler.Create(Policy, Tokenizer, () => PolicyVersion, settings.Model.Decoders);
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

    /// <summary>The learner's update counter, which replay items are stamped with.</summary>
    public long UpdateCount => Learner.UpdateCount;

    /// <summary>
    /// The generated groups join the rollouts waiting for labels (deadline: now + LabelWait); their
    /// prompts are then absorbed and completed in <paramref name="prompts"/>. A batch generated from
    /// weights that have since been refused (a version other than the current one while quiesced) is
    /// dropped and its prompts are left unabsorbed (they are read again after the reload).
    /// </summary>
    public int AdmitGenerated(GeneratedBatch batch, OffsetTracker prompts)
    {
        Enter();
        if (Quiesced) return 0;
        var deadline = Deadline();
        var admitted = 0;
        foreach (var generated in batch.Prompts)
        {
            var key = GroupKey(generated.Work.Prompt.Id, batch.PolicyVersion);
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
                    PromptId = generated.Work.Prompt.Id,
                    Prompt = generated.Work.Prompt.Prompt,
                    Completion = c.Text,
                    PromptTokens = [.. c.PromptTokens],
                    CompletionTokens = [.. c.Tokens],
                    BehaviourLogProbs = [.. c.PolicyLogProbs],
                    Reward = 0,
                    RewardSource = RewardSource.Model,
                    UpdateCount = batch.UpdateCount,
                    GeneratedAt = batch.GeneratedAt,
                    ScoredAt = batch.GeneratedAt,
                }, key, deadline);
                admitted++;
            }
            prompts.Complete(generated.Work.Source);
        }
        Counters = Counters with { PromptsAbsorbed = Counters.PromptsAbsorbed + batch.Prompts.Count, RolloutsAdmitted = Counters.RolloutsAdmitted + admitted };
        PublishGauges();
        return admitted;
    }

    // ---- rollouts from the topic (role learner) ------------------------------------------------

    /// <summary>
    /// Rollout records from generators join the waiting rollouts. Their text is tokenized (with the
    /// end-of-sequence token appended only when the generator's policy sampled it: finish_reason eos, or absent
    /// from older producers; a completion cut at the token limit did not choose to end) and their per-token behaviour
    /// log-probs are recomputed with the current policy (the record carries only their sum); their
    /// replay version is the learner update that published their policy version (or the nearest older one).
    /// </summary>
    public int AdmitRolloutRecords(IReadOnlyList<ValidatedRecord> records, OffsetTracker tracker)
    {
        Enter();
        var rollouts = records.Select(r => (Record: (RolloutRecord)r.Record, r.Source)).ToList();
        if (Quiesced || rollouts.Count == 0) return 0;
        var rows = rollouts.Select(r => (Prompt: SequenceBatch.EncodePrompt(Tokenizer, r.Record.Prompt),
            Completion: r.Record.EndedWithEndOfSequence ? (int[])[.. Tokenizer.Encode(r.Record.Completion), Tokenizer.EndOfSequenceId] : Tokenizer.Encode(r.Record.Completion))).ToList();
        var logProbs = BehaviourLogProbs(rows);
        var deadline = Deadline();
        var now = time.GetUtcNow();
        for (var i = 0; i < rollouts.Count; i++)
        {
            var (record, source) = rollouts[i];
            var (prompt, completion) = rows[i];
            var kept = logProbs[i];
            Pending.Add(new Rollout
            {
                Id = record.Id,
                PromptId = record.PromptId,
                Prompt = record.Prompt,
                Completion = record.Completion,
                PromptTokens = [.. prompt],
                CompletionTokens = [.. completion[..kept.Length]], // an over-long completion keeps what the context holds
                BehaviourLogProbs = [.. kept],
                Reward = 0,
                RewardSource = RewardSource.Model,
                UpdateCount = versionMap.UpdateCountOf(record.PolicyVersion),
                GeneratedAt = source.Timestamp,
                ScoredAt = now,
            }, GroupKey(record.PromptId, record.PolicyVersion), deadline);
            tracker.Complete(source);
        }
        Counters = Counters with { RolloutsAdmitted = Counters.RolloutsAdmitted + rollouts.Count };
        PublishGauges();
        return rollouts.Count;
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

    // ---- feedback -------------------------------------------------------------------------------

    /// <summary>
    /// Absorbs labels: each preference pair is first judged by the current reward model (the verdict goes
    /// to the guardrail's accuracy check before the model learns from it), queued for reward-model
    /// training, put in the human-pair buffer, and joined to the waiting rollouts it names; each rating
    /// feeds the human drift detector, is queued for training and joined likewise. After a rollback, replayed
    /// labels and labels of the abandoned line are absorbed the same way but not judged (<see cref="Observation"/>). Labels naming unknown
    /// rollouts (e.g. generated before a restart) are used all the same: they are self-contained.
    /// Then the reward model trains on every full batch of queued labels.
    /// </summary>
    public LabelsAbsorbed AbsorbLabels(IReadOnlyList<ValidatedRecord> labels, OffsetTracker tracker)
    {
        Enter();
        var now = time.GetUtcNow();
        var pairs = new List<(PreferencePair Pair, PreferenceRecord Record, ValidatedRecord Label)>();
        int ratings = 0, joined = 0, refused = 0;
        foreach (var label in labels)
        {
            if (label.Record is PreferenceRecord preference) pairs.Add((ToPair(preference, now), preference, label));
        }

        var intakes = pairs.Count > 0 ? RewardTrainer.AddPairs(pairs.Select(p => p.Pair).ToList()) : [];
        for (var i = 0; i < pairs.Count; i++)
        {
            var (pair, record, label) = pairs[i];
            var intake = intakes[i];
            if (intake.Agreed is { } agreed && RewardTrainer.Counters.LabelsTrained >= settings.Reward.GuardrailWarmUpLabels && Observation.ShouldObserve(label))
                guardrail.ObserveRewardModelPrediction(agreed);
            if (intake.Route == LabelRoute.Rejected)
            {
                // Refused (e.g. chosen == rejected): it neither trains nor orders the rollouts it names.
                refused++;
                logger.LogWarning("Reward trainer refused preference {Id}: {Problem}", record.Id, intake.Problem);
                continue;
            }
            if (settings.Learner.HumanPairsPerUpdate > 0) HumanPairs.Add(pair, UpdateCount);
            if (record.RolloutIds is { } ids && Pending.TryJoinPreference(ids.Chosen, ids.Rejected, record.Prompt, record.Chosen, record.Rejected)) joined++;
        }

        foreach (var label in labels)
        {
            if (label.Record is not RatingRecord rating) continue;
            ratings++;
            var route = RewardTrainer.AddRating(new Rating { Id = rating.Id, Prompt = rating.Prompt, Completion = rating.Completion, Value = rating.Reward, RolloutId = rating.RolloutId });
            if (route == LabelRoute.Rejected)
            {
                // Unreachable from the worker's intake, which dead-letters ratings off the scale (out-of-range);
                // a refused rating must not reach the drift detector either.
                refused++;
                logger.LogWarning("Reward trainer refused rating {Id}: {Reward} is outside Reward:RatingMin..RatingMax ({Min}..{Max})",
                    rating.Id, rating.Reward, settings.Reward.RatingMin, settings.Reward.RatingMax);
                continue;
            }
            if (Observation.ShouldObserve(label))
            {
                metrics.ObserveReward(DriftSource.Human, rating.Reward);
                guardrail.ObserveHumanRating(rating.Reward);
            }
            var target = RewardTrainer.Options.RatingTarget(rating.Reward);
            if (rating.RolloutId is { } rolloutId && Pending.TryJoinRating(rolloutId, rating.Prompt, rating.Completion, target)) joined++;
        }

        foreach (var label in labels)
        {
            var (id, schema) = label.Record switch
            {
                PreferenceRecord p => (p.Id, p.Schema),
                RatingRecord r => (r.Id, r.Schema),
                _ => throw new InvalidOperationException($"not a label: {label.Record.Schema}"),
            };
            Audit?.Add(new AbsorbedLabel(id, schema, label.Source.Topic, label.Source.Partition.Partition, label.Source.Offset, Learner.Counters.UpdatesApplied));
            tracker.Complete(label.Source);
        }
        if (Observation.ReplayPending) Observation.Progress(tracker);

        var steps = RewardTrainer.Train();
        Counters = Counters with
        {
            PairsAbsorbed = Counters.PairsAbsorbed + pairs.Count,
            RatingsAbsorbed = Counters.RatingsAbsorbed + ratings,
            LabelsJoined = Counters.LabelsJoined + joined,
            LabelsUnjoined = Counters.LabelsUnjoined + (pairs.Count + ratings - joined - refused),
            LabelsRefused = Counters.LabelsRefused + refused,
        };
        PublishGauges();
        return new LabelsAbsorbed(pairs.Count, ratings, joined, refused, steps.Count, steps.Count > 0 ? steps[^1].Loss : null);
    }

    private PreferencePair ToPair(PreferenceRecord record, DateTimeOffset now)
    {
        // When both rollouts are waiting here, train on their exact sampled tokens rather than a re-tokenization.
        var chosen = record.RolloutIds is { } ids ? Pending.Find(ids.Chosen) : null;
        var rejected = record.RolloutIds is { } ids2 ? Pending.Find(ids2.Rejected) : null;
        var exact = chosen is not null && rejected is not null && chosen.Completion == record.Chosen && rejected.Completion == record.Rejected
                    && chosen.Prompt == record.Prompt && chosen.PromptTokens.SequenceEqual(rejected.PromptTokens);
        return new PreferencePair
        {
            Id = record.Id,
            PromptId = exact ? chosen!.PromptId : null,
            Prompt = record.Prompt,
            Chosen = record.Chosen,
            Rejected = record.Rejected,
            PromptTokens = exact ? chosen!.PromptTokens : [],
            ChosenTokens = exact ? chosen!.CompletionTokens : [],
            RejectedTokens = exact ? rejected!.CompletionTokens : [],
            Source = PairSource.Human,
            ChosenRolloutId = record.RolloutIds?.Chosen,
            RejectedRolloutId = record.RolloutIds?.Rejected,
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
        Enter();
        var due = all ? Pending.TakeAll() : Pending.TakeDue(time.GetTimestamp());
        if (due.Count == 0) return ScoringResult.None;
        var rollouts = due.SelectMany(g => g.Rollouts).ToList();
        var scores = RewardModel.Score(Tokenizer, rollouts.Select(r => (r.Rollout.Prompt, r.Rollout.Completion)).ToList(), settings.Scoring.RewardBatchSize);
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
        foreach (var score in modelScores) metrics.ObserveReward(DriftSource.Model, score);
        PublishGauges();
        return new ScoringResult(due.Count, scored, human, 0, modelScores);
    }

    // ---- updates --------------------------------------------------------------------------------

    /// <summary>
    /// One learner update and its guardrail verdict, in one work item so nothing is generated from
    /// unjudged weights. Accepted: the weights become <paramref name="nextVersion"/> (the checkpoint
    /// about to be written). Refused after the weights changed (rollback, reject, pause): the state
    /// quiesces until the pipeline reloads a checkpoint.
    /// </summary>
    public UpdateCycle RunUpdate(Func<long> nextVersion, CancellationToken cancellationToken)
    {
        Enter();
        var started = time.GetTimestamp();
        var update = Learner.Update(Replay, HumanPairs, cancellationToken);
        var duration = time.GetElapsedTime(started);
        PublishGauges();
        if (update.SkipReason == LearnerSkipReason.EmptyBatch) return new UpdateCycle(update, null, false, false, PolicyVersion, duration);

        var predicted = nextVersion();
        var report = update.Applied
            ? update.ToReport() with { PolicyVersion = predicted }
            : new UpdateReport(predicted, Loss: double.NaN); // a step the NaN guard skipped: the guardrail counts the streak
        // While labels are read again after a rollback, the reward model relearns them and its scores move for that
        // reason alone: the model-reward detector waits (LabelObservationFilter.ReplayPending).
        if (Observation.ReplayPending && report.MeanReward is { } mean && double.IsFinite(mean)) report = report with { MeanReward = null };
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
    /// Names the weights of a state that has never been checkpointed (policy version 0) with the version
    /// of its first checkpoint, about to be written.
    /// </summary>
    public void AdoptFirstVersion(long version)
    {
        Enter();
        if (PolicyVersion != 0) throw new InvalidOperationException($"the state already carries policy version {PolicyVersion}");
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        PolicyVersion = version;
        versionMap.AdoptFirst(version, Learner.UpdateCount);
    }

    /// <summary>Marks the state unusable for generation until the pipeline reloads (a rollback requested from outside).</summary>
    public void Quiesce()
    {
        Enter();
        Quiesced = true;
    }

    // ---- helpers ----------------------------------------------------------------------------------

    internal LearningStateSettings Settings => settings;

    internal void Enter()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        thread.VerifyAccess();
    }

    private long Deadline() => time.GetTimestamp() + (long)(settings.Scoring.LabelWait.TotalSeconds * time.TimestampFrequency);

    private static string GroupKey(string promptId, long version) => $"{promptId}@{version}";

    private int freshSnapshot;
    private int pendingSnapshot;

    /// <summary>Fresh (never trained on) rollouts in replay, as of the last change; readable from any thread.</summary>
    public int FreshSnapshot => Volatile.Read(ref freshSnapshot);

    /// <summary>Rollouts waiting for labels, as of the last change; readable from any thread.</summary>
    public int PendingSnapshot => Volatile.Read(ref pendingSnapshot);

    /// <summary>Pulsed after every change of the counts above (the learner's cadence and the sample budget wait on it).</summary>
    public AsyncSignal Changed { get; } = new();

    /// <summary>Publishes the replay gauge and the cross-thread counts (call after any change).</summary>
    internal void PublishGauges()
    {
        metrics.SetReplaySize(Replay.Count);
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
        // Each state owns its staged copy of the reference weights: without this every reload or rollback
        // would leave a policy-sized file in the staging area (the pod's /tmp) until the process ends.
        StagingArea.Delete(Path.GetDirectoryName(ReferenceFile)!);
    }
}
