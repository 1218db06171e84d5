using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// The objective a learner optimises, chosen by name through one flat switch over the losses in
/// <see cref="Losses"/>, plus the optional per-token KL-to-reference penalty
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
    }

    public ObjectiveOptions Options { get; }

    public string Name => Options.Name;

    /// <summary>The objective reads log π_ref (the learner must run the reference model).</summary>
    public bool NeedsReference => Name is ObjectiveNames.Dpo or ObjectiveNames.ConservativeDpo or ObjectiveNames.Ipo;

    /// <summary>The objective reads the behaviour log-probs recorded at sampling time.</summary>
    public bool NeedsBehaviour => Name is ObjectiveNames.Ppo;

    /// <summary>The objective reads (chosen, rejected) pairs (for <c>sft</c> they are optional).</summary>
    public bool NeedsPairs => Name is ObjectiveNames.BestOfN or ObjectiveNames.NegativeGradientSft
        or ObjectiveNames.Dpo or ObjectiveNames.ConservativeDpo or ObjectiveNames.Ipo;

    public bool NeedsAdvantages => Name is ObjectiveNames.Reinforce or ObjectiveNames.Ppo;

    public bool NeedsRewards => Name is ObjectiveNames.Rwr;

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
        Tensor objective = Name switch
        {
            ObjectiveNames.Sft => inputs.Pairs is null
                ? Losses.Sft(inputs.PolicyLogProbs)
                : Pairwise(inputs, diagnostics, p => Losses.Sft(p.PolicyChosen)),
            ObjectiveNames.BestOfN => Pairwise(inputs, diagnostics, p => Losses.Sft(p.PolicyChosen)),
            ObjectiveNames.NegativeGradientSft => Pairwise(inputs, diagnostics, p => Losses.NegativeGradientSft(p.PolicyChosen, p.PolicyRejected, o.NegativeWeight)),
            ObjectiveNames.Dpo => Pairwise(inputs, diagnostics, p => Losses.Dpo(p.Margin!, o.Beta)),
            ObjectiveNames.ConservativeDpo => Pairwise(inputs, diagnostics, p => Losses.ConservativeDpo(p.Margin!, o.Beta, o.LabelSmoothing)),
            ObjectiveNames.Ipo => Pairwise(inputs, diagnostics, p => Losses.Ipo(p.Margin!, o.Beta)),
            ObjectiveNames.Rwr => Rwr(inputs, diagnostics),
            ObjectiveNames.Reinforce => Reinforce(inputs, diagnostics),
            ObjectiveNames.Ppo => Ppo(inputs, diagnostics),
            _ => throw new InvalidOperationException($"objective '{Name}' passed validation but has no case in the switch"),
        };

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

    /// <summary>The gathered views of one batch of pairs that every pairwise loss reads.</summary>
    private sealed record PairViews(Tensor PolicyChosen, Tensor PolicyRejected, Tensor? Margin);

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

    private Tensor Rwr(ObjectiveInputs inputs, Dictionary<string, double> diagnostics)
    {
        if (inputs.PolicyLogProbs.size(0) == 0) return ZeroLike(inputs.PolicyLogProbs);
        var o = Options;
        using (no_grad())
        {
            var weights = Losses.RwrWeights(inputs.Rewards!, o.RwrTemperature, o.RwrMaxWeight);
            diagnostics[DiagnosticNames.RwrWeightMean] = weights.mean().ToDouble();
            diagnostics[DiagnosticNames.RwrWeightMax] = weights.max().ToDouble();
            var raw = (inputs.Rewards!.to(ScalarType.Float64) / o.RwrTemperature).exp();
            diagnostics[DiagnosticNames.RwrClippedFraction] = raw.gt(o.RwrMaxWeight).to(ScalarType.Float64).mean().ToDouble();
        }
        return Losses.Rwr(inputs.PolicyLogProbs, inputs.Rewards!, o.RwrTemperature, o.RwrMaxWeight);
    }

    private static Tensor Reinforce(ObjectiveInputs inputs, Dictionary<string, double> diagnostics)
    {
        if (inputs.PolicyLogProbs.size(0) == 0) return ZeroLike(inputs.PolicyLogProbs);
        AdvantageDiagnostics(inputs.Advantages!, diagnostics);
        return Losses.Reinforce(inputs.PolicyLogProbs, inputs.Advantages!);
    }

    private Tensor Ppo(ObjectiveInputs inputs, Dictionary<string, double> diagnostics)
    {
        if (inputs.PolicyLogProbs.size(0) == 0) return ZeroLike(inputs.PolicyLogProbs);
        AdvantageDiagnostics(inputs.Advantages!, diagnostics);
        // Sequence-level inputs are the one-token case of the per-token ratio (B, 1).
        var policy = inputs.Tokens?.Policy ?? inputs.PolicyLogProbs.unsqueeze(1);
        var behaviour = inputs.Tokens?.Behaviour ?? inputs.BehaviourLogProbs!.unsqueeze(1);
        var mask = inputs.Tokens?.Mask ?? inputs.PolicyLogProbs.detach().ones_like().unsqueeze(1);
        var loss = Losses.PpoClip(policy, behaviour, mask, inputs.Advantages!, Options.PpoClipRange);

        using (no_grad())
        {
            var (ratio, unclipped, terms) = Losses.PpoTerms(policy.detach(), behaviour, inputs.Advantages!, Options.PpoClipRange);
            var m = Losses.FloatMask(mask, ratio);
            var tokens = m.sum().clamp(min: 1);
            diagnostics[DiagnosticNames.ClipFraction] = (terms.gt(unclipped).to(ratio.dtype) * m).sum().div(tokens).ToDouble();
            diagnostics[DiagnosticNames.RatioMean] = (ratio * m).sum().div(tokens).ToDouble();
            diagnostics[DiagnosticNames.ApproxKl] = (((ratio - 1.0) - ratio.log()) * m).sum(1).mean().ToDouble();
        }
        return loss;
    }

    private static void AdvantageDiagnostics(Tensor advantages, Dictionary<string, double> diagnostics)
    {
        using var _ = no_grad();
        var a = advantages.to(ScalarType.Float64);
        diagnostics[DiagnosticNames.AdvantageMean] = a.mean().ToDouble();
        diagnostics[DiagnosticNames.AdvantageStd] = a.size(0) > 1 ? a.var(0, unbiased: false).sqrt().ToDouble() : 0;
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
