using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Pairs;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Learning.Training;

/// <summary>
/// Everything a <see cref="Learner"/> is configured with, checked once when it is built
/// (<see cref="Validate"/>): an out-of-range value fails naming the field, never clamped at run time.
/// </summary>
public sealed record LearnerOptions
{
    /// <summary>The objective (default on-policy DPO, β = 0.1) and its hyper-parameters.</summary>
    public ObjectiveOptions Objective { get; init; } = new();

    /// <summary>How on-policy pairs are formed from the K scored samples of a prompt (pairwise objectives).</summary>
    public PairingOptions Pairing { get; init; } = new();

    /// <summary>T: gradient steps on each update's batch (the paper's sample reuse). The reference
    /// log-probs, pairs and advantages are computed once and shared by the T steps; the policy's are
    /// recomputed at every step.</summary>
    public int InnerSteps { get; init; } = 1;

    /// <summary>Rollouts drawn from the replay buffer per update by <see cref="Learner.Update(Replay.ReplayBuffer{TrainingData.Rollout}, Replay.ReplayBuffer{TrainingData.PreferencePair}?, CancellationToken)"/>
    /// (fresh vs replayed as the buffer's own mix ratio says).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Human preference pairs drawn per update from the pair buffer (0 = none).</summary>
    public int HumanPairsPerUpdate { get; init; } = 16;

    /// <summary>The policy's own AdamW (TorchSharp's, torch.optim.AdamW's update). Weight decay 0: decay
    /// pulls towards zero, not towards the reference, so the KL penalty is the leash. lr 1e-5 suits
    /// GPT-2-sized policies; tiny ones want ~1e-4–1e-3.</summary>
    public AdamWOptions Optimizer { get; init; } = new() { LearningRate = 1e-5, WeightDecay = 0 };

    /// <summary>Gradients are clipped to this global L2 norm (torch's clip_grad_norm_) before each step;
    /// null leaves them unclipped (the norm is still measured and a non-finite one still skips the step).</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    /// <summary>Sequence log-prob = the sum over completion tokens (DPO's definition) or the per-token mean.</summary>
    public LogProbReduction Reduction { get; init; } = LogProbReduction.Sum;

    public KlControlOptions Kl { get; init; } = new();

    /// <summary>The estimator of the reported (and controller-steered) KL(π‖π_ref) per sequence: k3
    /// ("LowVariance", never negative, unbiased on fresh samples) by default. FullVocabulary is exact per
    /// position but keeps a (B, T, V) reference tensor: cheap with the byte vocabulary, ~0.8 GB at GPT-2's 50k.</summary>
    public KlEstimator KlMetric { get; init; } = KlEstimator.LowVariance;

    /// <summary>REINFORCE/PPO advantages: leave-one-out within each prompt's samples (RLOO), or a moving average.</summary>
    public AdvantageBaseline Baseline { get; init; } = AdvantageBaseline.LeaveOneOut;

    /// <summary>EMA decay of the moving-average baseline in (0, 1); null = cumulative mean over all rewards seen.</summary>
    public double? BaselineDecay { get; init; } = 0.9;

    /// <summary>Divide moving-average advantages by the running standard deviation.</summary>
    public bool NormalizeAdvantages { get; init; } = true;

    /// <summary>Reward given to a human pair's chosen response (and its negation to the rejected one) when
    /// the objective reads rewards (rwr, reinforce, ppo): a human pair carries an order, not a score, so it
    /// becomes a two-sample group whose rewards differ by 2× this and average to zero.</summary>
    public double HumanPairReward { get; init; } = 0.5;

    /// <summary>Null: full fine-tuning (every policy weight trains; the reference is a separate frozen
    /// copy). Set: LoRA — the learner trains only the policy's adapters (attaching fresh ones, seeded by
    /// <see cref="Seed"/>, if it has none), its optimizer holds state for them alone, and the reference is
    /// the policy's own base weights with the adapters off (<see cref="ReferenceModel.BaseOf"/>).</summary>
    public LoraOptions? Adapter { get; init; }

    /// <summary>Seeds the policy's dropout generator when the learner is built (its state is then part of
    /// the learner's checkpointed state). With dropout 0 nothing in an update is random.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Objective, nameof(Objective));
        ArgumentNullException.ThrowIfNull(Pairing, nameof(Pairing));
        ArgumentNullException.ThrowIfNull(Optimizer, nameof(Optimizer));
        ArgumentNullException.ThrowIfNull(Kl, nameof(Kl));
        Objective.Validate();
        Pairing.Validate();
        Optimizer.Validate();
        Kl.Validate();
        Adapter?.Validated();
        if (InnerSteps < 1) throw new ArgumentOutOfRangeException(nameof(InnerSteps), InnerSteps, "an update takes at least one gradient step");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be at least 1");
        if (HumanPairsPerUpdate < 0) throw new ArgumentOutOfRangeException(nameof(HumanPairsPerUpdate), HumanPairsPerUpdate, "must be ≥ 0");
        if (MaxGradNorm is { } max && (!(max > 0) || double.IsInfinity(max)))
            throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), max, "must be a positive finite norm (null disables clipping)");
        if (!Enum.IsDefined(Reduction)) throw new ArgumentException($"unknown reduction {(int)Reduction}", nameof(Reduction));
        if (!Enum.IsDefined(KlMetric)) throw new ArgumentException($"unknown KL estimator {(int)KlMetric}", nameof(KlMetric));
        if (!Enum.IsDefined(Baseline)) throw new ArgumentException($"unknown baseline {(int)Baseline}; valid: {string.Join(", ", Enum.GetNames<AdvantageBaseline>())}", nameof(Baseline));
        if (BaselineDecay is { } d && !(d > 0 && d < 1)) throw new ArgumentOutOfRangeException(nameof(BaselineDecay), d, "must be in (0, 1), or null for a cumulative mean");
        if (!(HumanPairReward > 0) || double.IsInfinity(HumanPairReward))
            throw new ArgumentOutOfRangeException(nameof(HumanPairReward), HumanPairReward, "must be a positive finite reward");
    }
}
