using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Pairs;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Optimization;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Configuration section <c>Learner</c>: when updates happen and what one update does. An update is due
/// after <see cref="UpdateEverySamples"/> freshly scored rollouts or <see cref="UpdateInterval"/>,
/// whichever comes first (the interval needs at least <see cref="MinSamples"/>). One update =
/// <see cref="InnerSteps"/> gradient steps of <see cref="Objective"/> on one batch drawn from replay
/// (plus human pairs), under a KL leash to the frozen reference. Defaults suit the demo's tiny model;
/// a GPT-2-sized policy wants a learning rate near 1e-5.
/// </summary>
public sealed class LearnerServiceOptions : IValidatedOptions
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

    /// <summary>T: gradient steps per update on the same batch.</summary>
    public int InnerSteps { get; set; } = 2;

    /// <summary>Rollouts drawn from replay per update.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Human preference pairs drawn per update (0 = train on them only through the reward model).</summary>
    public int HumanPairsPerUpdate { get; set; } = 32;

    /// <summary>AdamW learning rate of the policy.</summary>
    public double LearningRate { get; set; } = 1e-4;

    /// <summary>AdamW weight decay (0: the KL leash, not decay towards zero, keeps the policy near the reference).</summary>
    public double WeightDecay { get; set; }

    /// <summary>Global gradient-norm clip (0 = none).</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>
    /// KL-penalty coefficient c (c·KL to the reference added to the objective; 0 = off unless TargetKl).
    /// DPO, IPO and cDPO already keep the policy near the reference through β, so the default is 0; REINFORCE
    /// and PPO usually want one (e.g. 0.05).
    /// </summary>
    public double KlCoefficient { get; set; }

    /// <summary>Target KL in nats per sequence for the adaptive controller (unset: fixed coefficient).</summary>
    public double? TargetKl { get; set; }

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

    /// <summary>Sequence log-prob = Sum over completion tokens (DPO's definition) or Mean.</summary>
    public LogProbReduction Reduction { get; set; } = LogProbReduction.Sum;

    /// <summary>Seed of the learner's own randomness (dropout).</summary>
    public ulong Seed { get; set; } = 1;

    public LearnerOptions ToLearnerOptions() => new()
    {
        Objective = new ObjectiveOptions { Name = Objective, Beta = Beta, LabelSmoothing = LabelSmoothing, PpoClipRange = PpoClipRange },
        Pairing = new PairingOptions { Mode = Pairing, MinRewardGap = MinRewardGap },
        InnerSteps = InnerSteps,
        BatchSize = BatchSize,
        HumanPairsPerUpdate = HumanPairsPerUpdate,
        Optimizer = new AdamWOptions { LearningRate = LearningRate, WeightDecay = WeightDecay },
        MaxGradNorm = MaxGradNorm > 0 ? MaxGradNorm : null,
        Reduction = Reduction,
        Kl = new KlControlOptions { Coefficient = KlCoefficient, TargetKl = TargetKl },
        Baseline = Baseline,
        KlMetric = KlMetric,
        Seed = Seed,
    };

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
        p.Range(nameof(LearningRate), LearningRate, 0, 1, minExclusive: true);
        p.Range(nameof(WeightDecay), WeightDecay, 0, 1);
        p.Range(nameof(MaxGradNorm), MaxGradNorm, 0, 1e6);
        p.Range(nameof(KlCoefficient), KlCoefficient, 0, 1e6);
        if (TargetKl is { } target) p.Positive(nameof(TargetKl), target);
        if (!Enum.IsDefined(Pairing)) p.Add(nameof(Pairing), $"must be BestVsWorst or AllPairs (got {Pairing})");
        p.Range(nameof(MinRewardGap), MinRewardGap, 0, 1e6);
        if (!Enum.IsDefined(Baseline)) p.Add(nameof(Baseline), $"must be LeaveOneOut or MovingAverage (got {Baseline})");
        if (!Enum.IsDefined(KlMetric)) p.Add(nameof(KlMetric), $"must be FullVocabulary, LowVariance, Squared or LogRatio (got {KlMetric})");
        if (!Enum.IsDefined(Reduction)) p.Add(nameof(Reduction), $"must be Sum or Mean (got {Reduction})");
        if (MaxSamplesAhead < UpdateEverySamples)
            p.Add(nameof(MaxSamplesAhead), $"must be at least UpdateEverySamples ({UpdateEverySamples}), or generation would stall before an update is due (got {MaxSamplesAhead})");
        if (p.Items.Count == 0) p.From("Objective", () => ToLearnerOptions().Validate()); // cross-field rules (e.g. cdpo needs LabelSmoothing)
        return p.Items;
    }
}
