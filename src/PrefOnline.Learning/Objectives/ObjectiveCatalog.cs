using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>The inputs an objective reads besides the policy's log-probs (see <see cref="ObjectiveInputs"/>).</summary>
[Flags]
public enum ObjectiveInput
{
    None = 0,

    /// <summary>log π_ref: the learner must run the reference model.</summary>
    Reference = 1,

    /// <summary>log μ recorded at sampling time (PPO's ratio).</summary>
    Behaviour = 2,

    /// <summary>(chosen, rejected) row pairs; without this flag a pairwise objective's pairs are optional.</summary>
    Pairs = 4,

    /// <summary>Reward minus a baseline, one per sequence.</summary>
    Advantages = 8,

    /// <summary>Raw rewards, one per sequence.</summary>
    Rewards = 16,
}

/// <summary>The per-pair views every pairwise loss reads: log π of chosen and rejected (P,), and ℓ (P,)
/// when a reference is present.</summary>
public sealed record PairViews(Tensor PolicyChosen, Tensor PolicyRejected, Tensor? Margin);

/// <summary>
/// Everything there is to know about one objective, in one place: the learner (which inputs to build,
/// pairs or sequences), the configuration check and the CLI read this; <see cref="TrainingObjective"/>
/// computes <see cref="PairLoss"/> or <see cref="SequenceLoss"/> from it.
/// </summary>
public sealed record ObjectiveDescription
{
    /// <summary>The configuration and CLI spelling (snake_case).</summary>
    public required string Name { get; init; }

    /// <summary>The paper's grouping: max-likelihood, ML + negative, on-policy RL, contrastive.</summary>
    public required string Family { get; init; }

    /// <summary>The loss as the table in <see cref="Losses"/> writes it.</summary>
    public required string Formula { get; init; }

    /// <summary>Inputs the loss reads (required at <see cref="TrainingObjective.Compute"/>).</summary>
    public ObjectiveInput Needs { get; init; }

    /// <summary>Trains on (chosen, rejected) pairs: the learner builds on-policy pairs from each prompt's
    /// K scored samples (so it needs K ≥ 2 or human pairs), and lays human pairs out beside them.</summary>
    public bool Pairwise { get; init; }

    /// <summary>Pushes down the likelihood of worse samples (the paper's "negative gradient").</summary>
    public bool NegativeGradient { get; init; }

    /// <summary>The <see cref="ObjectiveOptions"/> fields this objective reads, checked by <see cref="Validate"/>;
    /// <see cref="ObjectiveOptions.LabelSmoothing"/> must stay 0 unless listed, so it is never applied by accident.</summary>
    public IReadOnlyList<string> Hyperparameters { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentException"/> naming a hyper-parameter this objective cannot use.</summary>
    public Action<ObjectiveOptions> Validate { get; init; } = _ => { };

    /// <summary>The loss on the batch's pairs (used whenever pairs are given).</summary>
    public Func<ObjectiveOptions, PairViews, Tensor>? PairLoss { get; init; }

    /// <summary>The loss on every sequence of the batch (used when no pairs are given).</summary>
    public Func<ObjectiveOptions, ObjectiveInputs, Tensor>? SequenceLoss { get; init; }

    /// <summary>Extra diagnostics of a sequence loss, computed without gradient (pairwise ones are generic).</summary>
    public Action<ObjectiveOptions, ObjectiveInputs, IDictionary<string, double>>? Diagnose { get; init; }

    public bool Reads(ObjectiveInput input) => (Needs & input) == input;
}

/// <summary>The spellings of <see cref="ObjectiveCatalog.All"/>'s names, for code that names one objective.</summary>
public static class ObjectiveNames
{
    public const string Sft = "sft";
    public const string BestOfN = "best_of_n";
    public const string Rwr = "rwr";
    public const string NegativeGradientSft = "negative_gradient_sft";
    public const string Reinforce = "reinforce";
    public const string Ppo = "ppo";
    public const string Dpo = "dpo";
    public const string ConservativeDpo = "cdpo";
    public const string Ipo = "ipo";

    /// <summary>Every valid name, in the order of the table.</summary>
    public static IReadOnlyList<string> All => ObjectiveCatalog.Names;
}

/// <summary>
/// Every objective of Tajwar et al. 2024 (§4, Table 1) the learner can optimise, one entry each, in the
/// order of the table in <see cref="Losses"/>. Adding an objective is adding an entry here (and its loss
/// to <see cref="Losses"/>): the learner, <c>Learner:Objective</c>'s check and the CLI read this list.
/// </summary>
public static class ObjectiveCatalog
{
    private const string MaxLikelihood = "max-likelihood";
    private const string MaxLikelihoodNegative = "ML + negative";
    private const string OnPolicyRl = "on-policy RL";
    private const string Contrastive = "contrastive";

    public static IReadOnlyList<ObjectiveDescription> All { get; } =
    [
        new()
        {
            // Pairs are optional: with them the chosen side of each pair is the target ("SFT on preferred").
            Name = ObjectiveNames.Sft, Family = MaxLikelihood, Formula = "−E[log π(w)]", Pairwise = true,
            PairLoss = (_, p) => Losses.Sft(p.PolicyChosen),
            SequenceLoss = (_, x) => Losses.Sft(x.PolicyLogProbs),
        },
        new()
        {
            Name = ObjectiveNames.BestOfN, Family = MaxLikelihood, Formula = "−E[log π(best of N)]", Pairwise = true,
            Needs = ObjectiveInput.Pairs,
            PairLoss = (_, p) => Losses.Sft(p.PolicyChosen),
        },
        new()
        {
            Name = ObjectiveNames.Rwr, Family = MaxLikelihood, Formula = "−E[min(e^{r/τ}, w_max) · log π(y)]",
            Needs = ObjectiveInput.Rewards, Hyperparameters = [nameof(ObjectiveOptions.RwrTemperature), nameof(ObjectiveOptions.RwrMaxWeight)],
            Validate = o =>
            {
                RequirePositiveFinite(o.RwrTemperature, nameof(o.RwrTemperature));
                if (!(o.RwrMaxWeight > 0)) throw new ArgumentOutOfRangeException(nameof(o.RwrMaxWeight), o.RwrMaxWeight, "must be positive (+∞ disables clipping)");
            },
            SequenceLoss = (o, x) => Losses.Rwr(x.PolicyLogProbs, x.Rewards!, o.RwrTemperature, o.RwrMaxWeight),
            Diagnose = (o, x, d) =>
            {
                var weights = Losses.RwrWeights(x.Rewards!, o.RwrTemperature, o.RwrMaxWeight);
                d[DiagnosticNames.RwrWeightMean] = weights.mean().ToDouble();
                d[DiagnosticNames.RwrWeightMax] = weights.max().ToDouble();
                var raw = (x.Rewards!.to(ScalarType.Float64) / o.RwrTemperature).exp();
                d[DiagnosticNames.RwrClippedFraction] = raw.gt(o.RwrMaxWeight).to(ScalarType.Float64).mean().ToDouble();
            },
        },
        new()
        {
            Name = ObjectiveNames.NegativeGradientSft, Family = MaxLikelihoodNegative, Formula = "−E[log π(w)] + β·E[log π(l)]",
            Pairwise = true, NegativeGradient = true, Needs = ObjectiveInput.Pairs, Hyperparameters = [nameof(ObjectiveOptions.NegativeWeight)],
            Validate = o => RequirePositiveFinite(o.NegativeWeight, nameof(o.NegativeWeight)),
            PairLoss = (o, p) => Losses.NegativeGradientSft(p.PolicyChosen, p.PolicyRejected, o.NegativeWeight),
        },
        new()
        {
            Name = ObjectiveNames.Reinforce, Family = OnPolicyRl, Formula = "−E[A · log π(y)]", NegativeGradient = true,
            Needs = ObjectiveInput.Advantages,
            SequenceLoss = (_, x) => Losses.Reinforce(x.PolicyLogProbs, x.Advantages!),
            Diagnose = (_, x, d) => AdvantageDiagnostics(x.Advantages!, d),
        },
        new()
        {
            Name = ObjectiveNames.Ppo, Family = OnPolicyRl, Formula = "E[Σ_t max(−A·ρ_t, −A·clip(ρ_t, 1−ε, 1+ε))]", NegativeGradient = true,
            Needs = ObjectiveInput.Behaviour | ObjectiveInput.Advantages, Hyperparameters = [nameof(ObjectiveOptions.PpoClipRange)],
            Validate = o =>
            {
                if (!(o.PpoClipRange > 0 && o.PpoClipRange < 1)) throw new ArgumentOutOfRangeException(nameof(o.PpoClipRange), o.PpoClipRange, "must be in (0, 1)");
            },
            SequenceLoss = (o, x) =>
            {
                var (policy, behaviour, mask) = x.PpoTokenView();
                return Losses.PpoClip(policy, behaviour, mask, x.Advantages!, o.PpoClipRange);
            },
            Diagnose = (o, x, d) =>
            {
                AdvantageDiagnostics(x.Advantages!, d);
                var (policy, behaviour, mask) = x.PpoTokenView();
                var (ratio, unclipped, terms) = Losses.PpoTerms(policy.detach(), behaviour, x.Advantages!, o.PpoClipRange);
                var m = Losses.FloatMask(mask, ratio);
                var tokens = m.sum().clamp(min: 1);
                d[DiagnosticNames.ClipFraction] = (terms.gt(unclipped).to(ratio.dtype) * m).sum().div(tokens).ToDouble();
                d[DiagnosticNames.RatioMean] = (ratio * m).sum().div(tokens).ToDouble();
                d[DiagnosticNames.ApproxKl] = (((ratio - 1.0) - ratio.log()) * m).sum(1).mean().ToDouble();
            },
        },
        new()
        {
            Name = ObjectiveNames.Dpo, Family = Contrastive, Formula = "−E[log σ(β·ℓ)]", Pairwise = true, NegativeGradient = true,
            Needs = ObjectiveInput.Reference | ObjectiveInput.Pairs, Hyperparameters = [nameof(ObjectiveOptions.Beta)],
            Validate = o => RequirePositiveFinite(o.Beta, nameof(o.Beta)),
            PairLoss = (o, p) => Losses.Dpo(p.Margin!, o.Beta),
        },
        new()
        {
            Name = ObjectiveNames.ConservativeDpo, Family = Contrastive, Formula = "−E[(1−ε)·log σ(β·ℓ) + ε·log σ(−β·ℓ)]", Pairwise = true, NegativeGradient = true,
            Needs = ObjectiveInput.Reference | ObjectiveInput.Pairs, Hyperparameters = [nameof(ObjectiveOptions.Beta), nameof(ObjectiveOptions.LabelSmoothing)],
            Validate = o =>
            {
                RequirePositiveFinite(o.Beta, nameof(o.Beta));
                if (!(o.LabelSmoothing > 0 && o.LabelSmoothing < 0.5))
                    throw new ArgumentOutOfRangeException(nameof(o.LabelSmoothing), o.LabelSmoothing, "cdpo needs a label smoothing in (0, 0.5); with 0 it is plain dpo");
            },
            PairLoss = (o, p) => Losses.ConservativeDpo(p.Margin!, o.Beta, o.LabelSmoothing),
        },
        new()
        {
            Name = ObjectiveNames.Ipo, Family = Contrastive, Formula = "E[(ℓ − 1/(2β))²]", Pairwise = true, NegativeGradient = true,
            Needs = ObjectiveInput.Reference | ObjectiveInput.Pairs, Hyperparameters = [nameof(ObjectiveOptions.Beta)],
            Validate = o => RequirePositiveFinite(o.Beta, nameof(o.Beta)),
            PairLoss = (o, p) => Losses.Ipo(p.Margin!, o.Beta),
        },
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(d => d.Name).ToArray();

    /// <summary>The description named <paramref name="name"/> (ordinal), or null.</summary>
    public static ObjectiveDescription? Find(string? name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal));

    /// <summary>The description named <paramref name="name"/>; an unknown name fails listing the valid ones.</summary>
    public static ObjectiveDescription Get(string name) => Find(name)
        ?? throw new ArgumentException($"unknown objective '{name}'; valid objectives: {string.Join(", ", Names)}", nameof(ObjectiveOptions.Name));

    private static void RequirePositiveFinite(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, value, "must be a positive finite number");
    }

    private static void AdvantageDiagnostics(Tensor advantages, IDictionary<string, double> diagnostics)
    {
        var a = advantages.to(ScalarType.Float64);
        diagnostics[DiagnosticNames.AdvantageMean] = a.mean().ToDouble();
        diagnostics[DiagnosticNames.AdvantageStd] = a.size(0) > 1 ? a.var(0, unbiased: false).sqrt().ToDouble() : 0;
    }
}
