using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// Everything an objective may read, computed once per step by the learner (TRL's lesson: log-probs
/// are computed once, every loss indexes into them). B sequences form the batch; pairs and
/// advantages refer to them by index. The objective never disposes or modifies these tensors.
/// </summary>
/// <remarks>
/// Sequence log-probs are log π(y | x) of each completion, reduced over its tokens by the caller's
/// sequence-log-prob helper ("sum" by default; "per-token mean" is that helper's explicit choice,
/// never re-done here). Only PPO and the KL penalty look at single tokens; when <see cref="Tokens"/>
/// is absent they treat each sequence as one token.
/// </remarks>
public sealed class ObjectiveInputs
{
    /// <summary>(B,) log π_θ(y | x) under the policy being trained, with autograd history.</summary>
    public required Tensor PolicyLogProbs { get; init; }

    /// <summary>(B,) log π_ref(y | x), no gradient. Needed by DPO, IPO, cDPO and the KL penalty.</summary>
    public Tensor? ReferenceLogProbs { get; init; }

    /// <summary>(B,) log μ(y | x) under the behaviour policy that sampled y (recorded at generation
    /// time), no gradient. Needed by PPO.</summary>
    public Tensor? BehaviourLogProbs { get; init; }

    /// <summary>(B,) scalar rewards. Needed by RWR.</summary>
    public Tensor? Rewards { get; init; }

    /// <summary>(B,) advantages, the baseline already subtracted (see <see cref="MovingAverageBaseline"/>,
    /// <see cref="LeaveOneOutBaseline"/>). Needed by REINFORCE and PPO.</summary>
    public Tensor? Advantages { get; init; }

    /// <summary>(P, 2) int64 (chosen, rejected) row indices into the batch: on-policy pairs from
    /// <see cref="Pairs.PairBuilder"/> or human pairs passed straight through. Needed by every
    /// pairwise objective; for <c>sft</c> optional (without pairs every sequence is a target).</summary>
    public Tensor? Pairs { get; init; }

    /// <summary>Per-token log-probs for PPO's ratio and the per-token KL penalty.</summary>
    public TokenLogProbs? Tokens { get; init; }

    /// <summary>PPO's per-token view: (B, T) policy, behaviour and mask; sequence-level inputs are the
    /// one-token case (B, 1).</summary>
    internal (Tensor Policy, Tensor Behaviour, Tensor Mask) PpoTokenView() =>
        (Tokens?.Policy ?? PolicyLogProbs.unsqueeze(1),
         Tokens?.Behaviour ?? BehaviourLogProbs!.unsqueeze(1),
         Tokens?.Mask ?? PolicyLogProbs.detach().ones_like().unsqueeze(1));
}
