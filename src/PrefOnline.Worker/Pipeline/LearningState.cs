using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Online;
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
using PreferencePair = PrefOnline.Learning.TrainingData.PreferencePair;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The host's side of the <see cref="OnlineLearner"/>: turns validated records into its inputs, completes each
/// record in its <see cref="OffsetTracker"/> in the same tensor-thread work item that applied it, and keeps what
/// only the host knows — the opt-in label audit, which labels the guardrail may judge after a rollback
/// (<see cref="Observation"/>) and the staged reference file. The learning rules themselves live in the
/// online learner.
/// </summary>
/// <remarks>
/// <para>While an epoch runs, only its <see cref="LearningLoop"/> calls it (on the tensor thread).</para>
/// <para><b>Absorbed means inside the learner.</b> A prompt is completed once its K rollouts wait there
/// (<see cref="AdmitGenerated"/>), a rollout record once it waits there (<see cref="AdmitRolloutRecords"/>),
/// a label once the reward trainer has it queued, the human-pair buffer holds it and any join is made
/// (<see cref="AbsorbLabels"/>): the offsets a checkpoint records are exactly those whose effects it holds.</para>
/// </remarks>
public sealed class LearningState : IDisposable
{
    private readonly ILogger logger;
    private bool disposed;

    internal LearningState(LearningStateSettings settings, OnlineLearner online, string referenceFile, ILogger logger)
    {
        Settings = settings;
        Online = online;
        ReferenceFile = referenceFile;
        this.logger = logger;
        Audit = settings.Worker.AuditAbsorbedLabels ? new LabelAudit() : null;
    }

    /// <summary>The learning loop's state and rules.</summary>
    public OnlineLearner Online { get; }

    public PolicyModel Policy => Online.Policy;

    /// <summary>The reference's weights as a file (staged once per run; copied into every checkpoint).</summary>
    public string ReferenceFile { get; }

    public RewardModel RewardModel => Online.RewardModel;

    public RewardTrainer RewardTrainer => Online.RewardTrainer;

    public Learner Learner => Online.Learner;

    public ReplayBuffer<Rollout> Replay => Online.Replay;

    public ReplayBuffer<PreferencePair> HumanPairs => Online.HumanPairs;

    public PendingJoins Pending => Online.Pending;

    /// <summary>The opt-in label audit (null when off).</summary>
    public LabelAudit? Audit { get; }

    /// <summary>Which absorbed labels the guardrail judges (all, except replays and the abandoned line's after a rollback).</summary>
    public LabelObservationFilter Observation { get; internal set; } = new();

    /// <summary>The published version of the policy's current weights.</summary>
    public long PolicyVersion => Online.PolicyVersion;

    public OnlineLearnerCounters Counters => Online.Counters;

    /// <summary>Published version → learner update counter, for the versions this learner published (bounded).</summary>
    public IReadOnlyDictionary<long, long> VersionMap => Online.VersionMap;

    /// <summary>The learner's update counter, which replay items are stamped with.</summary>
    public long UpdateCount => Online.UpdateCount;

    /// <summary>Fresh (never trained on) rollouts in replay, as of the last change; readable from any thread.</summary>
    public int FreshSnapshot => Online.FreshSnapshot;

    /// <summary>Rollouts waiting for labels, as of the last change; readable from any thread.</summary>
    public int PendingSnapshot => Online.PendingSnapshot;

    /// <summary>Pulsed after every change of the counts above (the learner's cadence and the sample budget wait on it).</summary>
    public AsyncSignal Changed => Online.Changed;

    internal LearningStateSettings Settings { get; }

    /// <summary>K samples for each prompt from the current weights; empty while <see cref="Quiesced"/>.</summary>
    public IReadOnlyList<SampledCompletion> Generate(IReadOnlyList<string> prompts, SamplingOptions options, CancellationToken cancellationToken) =>
        Online.Generate(prompts, options, cancellationToken);

    /// <summary>
    /// The generated groups join the rollouts waiting for labels; their prompts are then absorbed and completed in
    /// <paramref name="prompts"/>. A batch generated from weights that have since been refused (the learner is
    /// quiesced) is dropped and its prompts are left unabsorbed (they are read again after the reload).
    /// </summary>
    public int AdmitGenerated(GeneratedBatch batch, OffsetTracker prompts)
    {
        var groups = batch.Prompts.Select(p => new GeneratedGroup(p.Work.Prompt.Id, p.Work.Prompt.Prompt, p.Completions, p.RolloutIds)).ToList();
        var before = Online.Counters.RolloutsAdmitted;
        if (!Online.AdmitGenerated(groups, batch.PolicyVersion, batch.UpdateCount, batch.GeneratedAt)) return 0;
        foreach (var generated in batch.Prompts) prompts.Complete(generated.Work.Source);
        return (int)(Online.Counters.RolloutsAdmitted - before);
    }

    /// <summary>Rollout records from generators join the waiting rollouts (<see cref="OnlineLearner.AdmitReceived"/>) and are completed in <paramref name="tracker"/>.</summary>
    public int AdmitRolloutRecords(IReadOnlyList<ValidatedRecord> records, OffsetTracker tracker)
    {
        var rollouts = records.Select(r => (Record: (RolloutRecord)r.Record, r.Source)).ToList();
        var received = rollouts.Select(r => new ReceivedRollout(r.Record.Id, r.Record.PromptId, r.Record.Prompt, r.Record.Completion, r.Record.PolicyVersion,
            r.Record.EndedWithEndOfSequence, r.Source.Timestamp)).ToList();
        if (!Online.AdmitReceived(received) || rollouts.Count == 0) return 0;
        foreach (var (_, source) in rollouts) tracker.Complete(source);
        return rollouts.Count;
    }

    /// <summary>
    /// Absorbs labels (<see cref="OnlineLearner.AbsorbLabels"/>): after a rollback, replayed labels and labels of the
    /// abandoned line are absorbed the same way but not judged (<see cref="Observation"/>). Each label is then
    /// audited (when on) and completed in <paramref name="tracker"/>.
    /// </summary>
    public LabelsAbsorbed AbsorbLabels(IReadOnlyList<ValidatedRecord> labels, OffsetTracker tracker)
    {
        Online.VerifyAccess();
        var preferences = new List<PreferenceLabel>();
        var ratings = new List<RatingLabel>();
        foreach (var label in labels)
        {
            if (label.Record is PreferenceRecord p)
                preferences.Add(new PreferenceLabel(p.Id, p.Prompt, p.Chosen, p.Rejected, p.RolloutIds?.Chosen, p.RolloutIds?.Rejected, Observation.ShouldObserve(label)));
        }
        foreach (var label in labels)
        {
            if (label.Record is RatingRecord r)
                ratings.Add(new RatingLabel(r.Id, r.Prompt, r.Completion, r.Reward, r.RolloutId, Observation.ShouldObserve(label)));
        }
        var updatesBefore = Learner.Counters.UpdatesApplied;
        var result = Online.AbsorbLabels(preferences, ratings);
        foreach (var refusal in result.Refusals)
        {
            if (refusal.Rating is { } reward)
                logger.LogWarning("Reward trainer refused rating {Id}: {Reward} is outside Reward:RatingMin..RatingMax ({Min}..{Max})",
                    refusal.Id, reward, Settings.Reward.RatingMin, Settings.Reward.RatingMax);
            else
                logger.LogWarning("Reward trainer refused preference {Id}: {Problem}", refusal.Id, refusal.Problem);
        }

        foreach (var label in labels)
        {
            var (id, schema) = label.Record switch
            {
                PreferenceRecord p => (p.Id, p.Schema),
                RatingRecord r => (r.Id, r.Schema),
                _ => throw new InvalidOperationException($"not a label: {label.Record.Schema}"),
            };
            Audit?.Add(new AbsorbedLabel(id, schema, label.Source.Topic, label.Source.Partition.Partition, label.Source.Offset, updatesBefore));
            tracker.Complete(label.Source);
        }
        if (Observation.ReplayPending) Observation.Progress(tracker);
        return result;
    }

    /// <summary>Scores the groups whose wait is over (<see cref="OnlineLearner.ScoreDue"/>).</summary>
    public ScoringResult ScoreDue(bool all = false) => Online.ScoreDue(all);

    /// <summary>Whether an update is due now (<see cref="OnlineLearner.DecideUpdate"/>).</summary>
    public UpdateDecision DecideUpdate() => Online.DecideUpdate();

    /// <summary>One update and its guardrail verdict (<see cref="OnlineLearner.RunUpdate"/>); the model-reward detector waits while labels are read again after a rollback.</summary>
    public UpdateCycle RunUpdate(Func<long> nextVersion, CancellationToken cancellationToken)
    {
        Online.VerifyAccess();
        return Online.RunUpdate(nextVersion, Observation.ReplayPending, cancellationToken);
    }

    /// <summary>Names the weights of a never-checkpointed state with its first checkpoint's version.</summary>
    public void AdoptFirstVersion(long version) => Online.AdoptFirstVersion(version);

    /// <summary>Marks the state unusable for generation until the pipeline reloads (a rollback requested from outside).</summary>
    public void Quiesce() => Online.Quiesce();

    internal void Enter()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        Online.VerifyAccess();
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Online.Dispose();
        // Each state owns its staged copy of the reference weights: without this every reload or rollback
        // would leave a policy-sized file in the staging area (the pod's /tmp) until the process ends.
        StagingArea.Delete(Path.GetDirectoryName(ReferenceFile)!);
    }
}
