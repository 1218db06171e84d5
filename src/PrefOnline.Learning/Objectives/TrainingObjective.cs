using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// The objective a learner optimises: its <see cref="ObjectiveDescription"/> from <see cref="ObjectiveCatalog"/>
/// (which loss of <see cref="Losses"/>, which inputs), plus the optional per-token KL-to-reference penalty
/// (total = objective + c·mean_b Σ_t k(d_t), c from a fixed or adaptive controller). Returns the loss
/// and named diagnostics. Options are validated here, once; <see cref="Compute"/> only checks that the
/// inputs the objective needs are present and shaped alike.
/// </summary>
public sealed class TrainingObjective
{
    public TrainingObjective(ObjectiveOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Description = ObjectiveCatalog.Get(options.Name);
    }

    public ObjectiveOptions Options { get; }

    public ObjectiveDescription Description { get; }

    public string Name => Options.Name;

    /// <summary>The objective reads log π_ref (the learner must run the reference model).</summary>
    public bool NeedsReference => Description.Reads(ObjectiveInput.Reference);

    /// <summary>The objective reads the behaviour log-probs recorded at sampling time.</summary>
    public bool NeedsBehaviour => Description.Reads(ObjectiveInput.Behaviour);

    /// <summary>The objective requires (chosen, rejected) pairs (<see cref="ObjectiveDescription.Pairwise"/> says
    /// whether it trains on them at all: for <c>sft</c> they are optional).</summary>
    public bool NeedsPairs => Description.Reads(ObjectiveInput.Pairs);

    public bool NeedsAdvantages => Description.Reads(ObjectiveInput.Advantages);

    public bool NeedsRewards => Description.Reads(ObjectiveInput.Rewards);

    /// <summary>
    /// The loss (a scalar in the caller's current scope, ready for Backward) and its diagnostics.
    /// A batch that yields nothing to learn from (no pairs) gives an exact zero that still
    /// back-propagates (all-zero gradients), so the learner's step needs no special case.
    /// </summary>
    /// <param name="klCoefficient">Weight of the KL penalty; 0 leaves it out (then no reference is needed
    /// unless the objective itself reads one).</param>
    public ObjectiveResult Compute(ObjectiveInputs inputs, double klCoefficient = 0)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (!(klCoefficient >= 0) || double.IsInfinity(klCoefficient))
            throw new ArgumentOutOfRangeException(nameof(klCoefficient), klCoefficient, "the KL coefficient must be a finite number ≥ 0");
        var batch = CheckInputs(inputs, klCoefficient > 0);

        var diagnostics = new Dictionary<string, double>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        var o = Options;
        var d = Description;
        Tensor objective;
        if (d.PairLoss is { } pairLoss && (inputs.Pairs is not null || d.SequenceLoss is null))
        {
            objective = Pairwise(inputs, diagnostics, p => pairLoss(o, p));
        }
        else if (batch == 0)
        {
            objective = ZeroLike(inputs.PolicyLogProbs);
        }
        else
        {
            if (d.Diagnose is { } diagnose)
            {
                using var _ = no_grad();
                diagnose(o, inputs, diagnostics);
            }
            objective = d.SequenceLoss!(o, inputs);
        }

        var loss = objective;
        using (no_grad())
        {
            diagnostics[DiagnosticNames.ObjectiveLoss] = objective.ToDouble();
            diagnostics[DiagnosticNames.LogProbMean] = batch == 0 ? 0 : inputs.PolicyLogProbs.detach().mean().ToDouble();
            if (inputs.ReferenceLogProbs is not null && batch > 0)
                diagnostics[DiagnosticNames.KlToReference] = (inputs.PolicyLogProbs.detach() - inputs.ReferenceLogProbs).mean().ToDouble();
        }

        if (klCoefficient > 0)
        {
            var (policyTokens, referenceTokens, mask) = TokenViewForKl(inputs);
            var perSequence = KlPenalty.PerSequence(policyTokens, referenceTokens, mask, o.KlEstimator);   // (B,)
            var penalty = batch == 0 ? ZeroLike(inputs.PolicyLogProbs) : perSequence.mean();
            loss = objective + penalty * klCoefficient;
            diagnostics[DiagnosticNames.KlPenalty] = penalty.ToDouble();
            diagnostics[DiagnosticNames.KlCoefficient] = klCoefficient;
        }

        diagnostics[DiagnosticNames.Loss] = loss.ToDouble();
        return new ObjectiveResult(loss.MoveToOuterDisposeScope(), diagnostics);
    }

    // ---- the cases -------------------------------------------------------------------------------

    private Tensor Pairwise(ObjectiveInputs inputs, Dictionary<string, double> diagnostics, Func<PairViews, Tensor> loss)
    {
        var pairs = inputs.Pairs!;
        var count = pairs.size(0);
        diagnostics[DiagnosticNames.Pairs] = count;
        if (count == 0) return ZeroLike(inputs.PolicyLogProbs);

        var chosenIndex = pairs.select(1, 0);                                        // (P,)
        var rejectedIndex = pairs.select(1, 1);
        var policyChosen = inputs.PolicyLogProbs.index_select(0, chosenIndex);       // (P,)
        var policyRejected = inputs.PolicyLogProbs.index_select(0, rejectedIndex);
        Tensor? margin = null;
        Tensor? chosenRatio = null, rejectedRatio = null;
        if (inputs.ReferenceLogProbs is { } reference)
        {
            var referenceChosen = reference.index_select(0, chosenIndex);
            var referenceRejected = reference.index_select(0, rejectedIndex);
            margin = Losses.LogRatioMargin(policyChosen, referenceChosen, policyRejected, referenceRejected);
            using var _ = no_grad();
            chosenRatio = policyChosen.detach() - referenceChosen;
            rejectedRatio = policyRejected.detach() - referenceRejected;
        }

        var result = loss(new PairViews(policyChosen, policyRejected, margin));

        using (no_grad())
        {
            diagnostics[DiagnosticNames.LogProbChosen] = policyChosen.detach().mean().ToDouble();
            diagnostics[DiagnosticNames.LogProbRejected] = policyRejected.detach().mean().ToDouble();
            if (chosenRatio is not null && rejectedRatio is not null)
            {
                var beta = Options.Beta;
                var chosenReward = chosenRatio * beta;
                var rejectedReward = rejectedRatio * beta;
                diagnostics[DiagnosticNames.RewardChosen] = chosenReward.mean().ToDouble();
                diagnostics[DiagnosticNames.RewardRejected] = rejectedReward.mean().ToDouble();
                diagnostics[DiagnosticNames.RewardMargin] = (chosenReward - rejectedReward).mean().ToDouble();
                diagnostics[DiagnosticNames.RewardAccuracy] = chosenReward.gt(rejectedReward).to(ScalarType.Float64).mean().ToDouble();
                diagnostics[DiagnosticNames.LogRatioMargin] = margin!.detach().mean().ToDouble();
            }
        }
        return result;
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /// <summary>0 · Σ log π: an exact zero connected to the graph, so Backward gives zero gradients.</summary>
    private static Tensor ZeroLike(Tensor policyLogProbs) => policyLogProbs.sum() * 0.0;

    private static (Tensor Policy, Tensor Reference, Tensor Mask) TokenViewForKl(ObjectiveInputs inputs)
    {
        if (inputs.Tokens is { Reference: not null } tokens) return (tokens.Policy, tokens.Reference, tokens.Mask);
        var policy = inputs.PolicyLogProbs.unsqueeze(1);                              // (B, 1)
        return (policy, inputs.ReferenceLogProbs!.unsqueeze(1), policy.detach().ones_like());
    }

    /// <summary>Presence and shape checks; returns B.</summary>
    private long CheckInputs(ObjectiveInputs inputs, bool penalised)
    {
        var policy = inputs.PolicyLogProbs ?? throw new ArgumentException("PolicyLogProbs is required", nameof(inputs));
        if (policy.dim() != 1) throw new ArgumentException($"PolicyLogProbs must be (B,), got [{string.Join(", ", policy.shape)}]", nameof(inputs));
        var batch = policy.size(0);

        void RequireVector(Tensor? t, string name, bool required, string why)
        {
            if (t is null)
            {
                if (required) throw new ArgumentException($"objective '{Name}' needs {name} ({why})", nameof(inputs));
                return;
            }
            if (t.dim() != 1 || t.size(0) != batch)
                throw new ArgumentException($"{name} must be ({batch},) like PolicyLogProbs, got [{string.Join(", ", t.shape)}]", nameof(inputs));
        }

        var tokens = inputs.Tokens;
        if (tokens is not null)
        {
            var shape = tokens.Policy.shape;
            if (shape.Length != 2 || shape[0] != batch)
                throw new ArgumentException($"Tokens.Policy must be ({batch}, T), got [{string.Join(", ", shape)}]", nameof(inputs));
            foreach (var (t, name) in new[] { (tokens.Reference, "Tokens.Reference"), (tokens.Behaviour, "Tokens.Behaviour"), ((Tensor?)tokens.Mask, "Tokens.Mask") })
                if (t is not null && !t.shape.SequenceEqual(shape))
                    throw new ArgumentException($"{name} must be [{string.Join(", ", shape)}] like Tokens.Policy, got [{string.Join(", ", t.shape)}]", nameof(inputs));
        }

        var referenceForPenalty = penalised && tokens?.Reference is null;
        RequireVector(inputs.ReferenceLogProbs, nameof(ObjectiveInputs.ReferenceLogProbs), NeedsReference || referenceForPenalty,
            NeedsReference ? "the implicit reward is a log-ratio against the reference" : "the KL penalty compares against the reference");
        RequireVector(inputs.BehaviourLogProbs, nameof(ObjectiveInputs.BehaviourLogProbs), NeedsBehaviour && tokens?.Behaviour is null,
            "the PPO ratio is taken against the policy that sampled");
        RequireVector(inputs.Advantages, nameof(ObjectiveInputs.Advantages), NeedsAdvantages, "reward minus a baseline");
        RequireVector(inputs.Rewards, nameof(ObjectiveInputs.Rewards), NeedsRewards, "the weights are exp(r/τ)");

        if (NeedsPairs && inputs.Pairs is null)
            throw new ArgumentException($"objective '{Name}' needs Pairs (chosen, rejected indices)", nameof(inputs));
        if (inputs.Pairs is { } pairs && (pairs.dim() != 2 || pairs.size(1) != 2 || pairs.dtype != ScalarType.Int64))
            throw new ArgumentException($"Pairs must be (P, 2) int64, got {pairs.dtype} [{string.Join(", ", pairs.shape)}]", nameof(inputs));
        return batch;
    }
}
