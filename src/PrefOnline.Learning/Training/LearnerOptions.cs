using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Configuration;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Optimization;
using PrefOnline.Learning.Pairs;

namespace PrefOnline.Learning.Training;

/// <summary>
/// Configuration section <c>Learner</c>, and everything a <see cref="Learner"/> is built with: when updates
/// happen and what one update does. An update is due after <see cref="UpdateEverySamples"/> freshly scored
/// rollouts or <see cref="UpdateInterval"/>, whichever comes first (the interval needs at least
/// <see cref="MinSamples"/>; the rule is <see cref="Online.OnlineLearner.DecideUpdate"/>). One update = <see cref="InnerSteps"/> gradient steps of <see cref="Objective"/> on
/// one batch drawn from replay (plus human pairs), under a KL leash to the frozen reference. The defaults are
/// the worker's (config/README.md) and suit the demo's tiny model; a GPT-2-sized policy wants a learning rate
/// near 1e-5. Checked once (<see cref="Problems"/>: one line per key): an out-of-range value is refused, never
/// clamped at run time.
/// </summary>
public sealed record LearnerOptions : IValidatedOptions
{
    public const string SectionName = "Learner";

    /// <summary>N: freshly scored rollouts that make an update due.</summary>
    public int UpdateEverySamples { get; set; } = 64;

    /// <summary>S: an update is due at least this often (when <see cref="MinSamples"/> fresh rollouts exist).</summary>
    public TimeSpan UpdateInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Fewest fresh rollouts an interval-triggered update runs with (fewer: the update is skipped as insufficient_data).</summary>
    public int MinSamples { get; set; } = 8;

    /// <summary>
    /// Backpressure: generation waits while this many rollouts are generated but not yet trained on
    /// (waiting for labels, or fresh in replay). A slow learner therefore slows prompt intake instead of
    /// producing stale samples, and memory stays bounded.
    /// </summary>
    public int MaxSamplesAhead { get; set; } = 192;

    /// <summary>One of <see cref="ObjectiveCatalog.Names"/>: sft, best_of_n, rwr, negative_gradient_sft, reinforce, ppo, dpo (default: on-policy DPO), cdpo, ipo.</summary>
    public string Objective { get; set; } = ObjectiveNames.Dpo;

    /// <summary>β of DPO/cDPO/IPO.</summary>
    public double Beta { get; set; } = 0.1;

    /// <summary>cDPO label smoothing (only with objective cdpo).</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>PPO clip range ε.</summary>
    public double PpoClipRange { get; set; } = 0.2;

    /// <summary>RWR temperature τ of the weights exp(A/τ).</summary>
    public double RwrTemperature { get; set; } = 1.0;

    /// <summary>RWR's cap on one sample's weight.</summary>
    public double RwrMaxWeight { get; set; } = 20.0;

    /// <summary>Weight of the pushed-down (rejected) term of negative_gradient_sft.</summary>
    public double NegativeWeight { get; set; } = 0.1;

    /// <summary>The sampled estimator of the KL penalty term inside the loss (LogRatio, Squared or LowVariance).</summary>
    public KlEstimator KlPenaltyEstimator { get; set; } = KlEstimator.Squared;

    /// <summary>T: gradient steps per update on the same batch. The reference log-probs, pairs and advantages
    /// are computed once and shared by the T steps; the policy's are recomputed at every step.</summary>
    public int InnerSteps { get; set; } = 2;

    /// <summary>Rollouts drawn from replay per update (fresh vs replayed as the buffer's own mix ratio says).</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Human preference pairs drawn per update (0 = train on them only through the reward model).</summary>
    public int HumanPairsPerUpdate { get; set; } = 32;

    /// <summary>Reward given to a human pair's chosen response (and its negation to the rejected one) when
    /// the objective reads rewards (rwr, reinforce, ppo): a human pair carries an order, not a score, so it
    /// becomes a two-sample group whose rewards differ by 2× this and average to zero.</summary>
    public double HumanPairReward { get; set; } = 0.5;

    /// <summary>AdamW learning rate of the policy.</summary>
    public double LearningRate { get; set; } = 1e-4;

    /// <summary>AdamW weight decay (0: the KL leash, not decay towards zero, keeps the policy near the reference).</summary>
    public double WeightDecay { get; set; }

    /// <summary>Global gradient-norm clip (torch's clip_grad_norm_) before each step; 0 = none (the norm is
    /// still measured and a non-finite one still skips the step).</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>
    /// KL-penalty coefficient c (c·KL to the reference added to the objective; 0 = off unless TargetKl).
    /// DPO, IPO and cDPO already keep the policy near the reference through β, so the default is 0; REINFORCE
    /// and PPO usually want one (e.g. 0.05).
    /// </summary>
    public double KlCoefficient { get; set; }

    /// <summary>Target KL in nats per sequence for the adaptive controller (unset: fixed coefficient; set: needs a positive KlCoefficient to start from).</summary>
    public double? TargetKl { get; set; }

    /// <summary>The adaptive KL controller's horizon in samples (how fast c moves towards the target).</summary>
    public double KlHorizon { get; set; } = 10_000;

    /// <summary>
    /// How the reported KL to the reference (the guardrail's KL budget, the adaptive controller) is measured.
    /// FullVocabulary (default): exact KL(π(·|prefix) ‖ π_ref(·|prefix)) summed over each batch sequence's
    /// positions; finite whoever sampled the tokens, but holds a (B, T, V) reference tensor (~B·T·V·4 bytes:
    /// nothing with the byte vocabulary, ~0.8 GB for a 64 × 64-token batch at GPT-2's 50k vocabulary).
    /// LowVariance (k3), Squared (k2) and LogRatio (k1) are sampled estimators: cheap, but biased on the batch's stale rows —
    /// a rejected response DPO pushed far down reads as an enormous k3 KL although the policy barely moved.
    /// </summary>
    public KlEstimator KlMetric { get; set; } = KlEstimator.FullVocabulary;

    /// <summary>How on-policy pairs are formed from a prompt's K scored rollouts: BestVsWorst or AllPairs.</summary>
    public PairingMode Pairing { get; set; } = PairingMode.BestVsWorst;

    /// <summary>Smallest reward gap that makes a pair (ties never do).</summary>
    public double MinRewardGap { get; set; }

    /// <summary>REINFORCE/PPO baseline: LeaveOneOut (RLOO) or MovingAverage.</summary>
    public AdvantageBaseline Baseline { get; set; } = AdvantageBaseline.LeaveOneOut;

    /// <summary>EMA decay of the moving-average baseline in (0, 1); unset = cumulative mean over all rewards seen.</summary>
    public double? BaselineDecay { get; set; } = 0.9;

    /// <summary>Divide moving-average advantages by the running standard deviation.</summary>
    public bool NormalizeAdvantages { get; set; } = true;

    /// <summary>Sequence log-prob = Sum over completion tokens (DPO's definition) or Mean.</summary>
    public LogProbReduction Reduction { get; set; } = LogProbReduction.Sum;

    /// <summary>Null: full fine-tuning (every policy weight trains; the reference is a separate frozen
    /// copy). Set: LoRA — the learner trains only the policy's adapters (attaching fresh ones, seeded by
    /// <see cref="Seed"/>, if it has none), its optimizer holds state for them alone, and the reference is
    /// the policy's own base weights with the adapters off (<see cref="ReferenceModel.BaseOf"/>).</summary>
    public LoraOptions? Adapter { get; init; }

    /// <summary>Seeds the policy's dropout generator when the learner is built (its state is then part of
    /// the learner's checkpointed state). With dropout 0 nothing in an update is random.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>True when a KL penalty is applied (a coefficient, or a target for the adaptive controller).</summary>
    public bool KlPenaltyEnabled => KlCoefficient > 0 || TargetKl is not null;

    /// <summary>The objective's hyper-parameters, as <see cref="TrainingObjective"/> takes them.</summary>
    public ObjectiveOptions ObjectiveParameters() => new()
    {
        Name = Objective, Beta = Beta, LabelSmoothing = LabelSmoothing, PpoClipRange = PpoClipRange,
        RwrTemperature = RwrTemperature, RwrMaxWeight = RwrMaxWeight, NegativeWeight = NegativeWeight, KlEstimator = KlPenaltyEstimator,
    };

    /// <summary>How <see cref="PairBuilder"/> forms pairs.</summary>
    public PairingOptions PairingParameters() => new() { Mode = Pairing, MinRewardGap = MinRewardGap };

    /// <summary>The policy's AdamW (torch.optim.AdamW's update, its default betas and eps).</summary>
    public AdamWOptions OptimizerParameters() => new() { LearningRate = LearningRate, WeightDecay = WeightDecay };

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(UpdateEverySamples), UpdateEverySamples, 1, 1_000_000);
        p.Duration(nameof(UpdateInterval), UpdateInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromDays(1));
        p.Range(nameof(MinSamples), MinSamples, 1, 1_000_000);
        p.Range(nameof(MaxSamplesAhead), MaxSamplesAhead, 1, 10_000_000);
        if (ObjectiveCatalog.Find(Objective) is null)
            p.Add(nameof(Objective), $"must be one of {string.Join(", ", ObjectiveCatalog.Names)} (got '{Objective}')");
        p.Range(nameof(InnerSteps), InnerSteps, 1, 1000);
        p.Range(nameof(BatchSize), BatchSize, 1, 100_000);
        p.Range(nameof(HumanPairsPerUpdate), HumanPairsPerUpdate, 0, 100_000);
        p.Positive(nameof(HumanPairReward), HumanPairReward);
        p.Range(nameof(LearningRate), LearningRate, 0, 1, minExclusive: true);
        p.Range(nameof(WeightDecay), WeightDecay, 0, 1);
        p.Range(nameof(MaxGradNorm), MaxGradNorm, 0, 1e6);
        p.Range(nameof(KlCoefficient), KlCoefficient, 0, 1e6);
        if (TargetKl is { } target)
        {
            p.Positive(nameof(TargetKl), target);
            if (!(KlCoefficient > 0)) p.Add(nameof(KlCoefficient), $"must be positive with TargetKl: the adaptive controller scales it geometrically (got {KlCoefficient})");
        }
        p.Positive(nameof(KlHorizon), KlHorizon);
        if (!Enum.IsDefined(Pairing)) p.Add(nameof(Pairing), $"must be BestVsWorst or AllPairs (got {Pairing})");
        p.Range(nameof(MinRewardGap), MinRewardGap, 0, 1e6);
        if (!Enum.IsDefined(Baseline)) p.Add(nameof(Baseline), $"must be LeaveOneOut or MovingAverage (got {Baseline})");
        if (BaselineDecay is { } decay && !(decay > 0 && decay < 1)) p.Add(nameof(BaselineDecay), $"must be in (0, 1), or unset for a cumulative mean (got {decay})");
        if (!Enum.IsDefined(KlMetric)) p.Add(nameof(KlMetric), $"must be FullVocabulary, LowVariance, Squared or LogRatio (got {KlMetric})");
        if (!Enum.IsDefined(Reduction)) p.Add(nameof(Reduction), $"must be Sum or Mean (got {Reduction})");
        if (MaxSamplesAhead < UpdateEverySamples)
            p.Add(nameof(MaxSamplesAhead), $"must be at least UpdateEverySamples ({UpdateEverySamples}), or generation would stall before an update is due (got {MaxSamplesAhead})");
        if (Adapter is { } lora)
            foreach (var line in lora.Problems()) p.AddRaw($"{SectionName}:{nameof(Adapter)}:{line}");
        if (p.Items.Count == 0) p.From(nameof(Objective), () => ObjectiveParameters().Validate()); // the objective's own rules (e.g. cdpo needs LabelSmoothing, RWR's temperature)
        return p.Items;
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem (<see cref="Problems"/>), for library callers.</summary>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
    }
}
