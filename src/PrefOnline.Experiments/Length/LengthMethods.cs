using PrefOnline.Learning.Training;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Pairs;

namespace PrefOnline.Experiments.Length;

/// <summary>
/// The length experiment's methods: each is one objective of <see cref="Losses"/> run through the
/// <see cref="Training.Learner"/>, plus how a batch of K scored samples per prompt becomes its pairs or
/// advantages.
/// <code>
///   dpo, ipo, cdpo, negative_gradient_sft   best-vs-worst pair of each prompt's K samples
///   best_of_n                               the best of K (best-vs-worst pairs, chosen side only)
///   sft                                     "SFT on preferred": the chosen side of every pair with different rewards
///   reinforce                               RLOO advantages (leave-one-out over the K samples)
///   ppo                                     RLOO advantages, ratio against the sampling policy, clip ε
///   rwr                                     weights exp(r/τ)
/// </code>
/// </summary>
public static class LengthMethods
{
    public const string Dpo = ObjectiveNames.Dpo;
    public const string Ipo = ObjectiveNames.Ipo;
    public const string ConservativeDpo = ObjectiveNames.ConservativeDpo;
    public const string Reinforce = ObjectiveNames.Reinforce;
    public const string Ppo = ObjectiveNames.Ppo;
    public const string BestOfN = ObjectiveNames.BestOfN;
    public const string Sft = ObjectiveNames.Sft;
    public const string Rwr = ObjectiveNames.Rwr;
    public const string NegativeGradientSft = ObjectiveNames.NegativeGradientSft;

    /// <summary>What runs when no method is named: two contrastive, two on-policy RL, two maximum-likelihood.</summary>
    public static IReadOnlyList<string> Default { get; } = [Dpo, Ipo, Reinforce, Ppo, BestOfN, Sft];

    /// <summary>Every objective of <see cref="ObjectiveCatalog"/>.</summary>
    public static IReadOnlyList<string> All => ObjectiveCatalog.Names;

    /// <summary>Methods that push down the likelihood of worse samples (the paper's "negative gradient").</summary>
    public static bool HasNegativeGradient(string method) => ObjectiveCatalog.Get(method).NegativeGradient;

    /// <summary>The learner settings of a method's objective (its name and hyper-parameters; the rest is <see cref="LengthExperiment.LearnerOptionsFor"/>'s).</summary>
    public static LearnerOptions Objective(string method, LengthOptions options) => method switch
    {
        Dpo => new LearnerOptions { Objective = ObjectiveNames.Dpo, Beta = options.DpoBeta },
        ConservativeDpo => new LearnerOptions { Objective = ObjectiveNames.ConservativeDpo, Beta = options.DpoBeta, LabelSmoothing = 0.1 },
        Ipo => new LearnerOptions { Objective = ObjectiveNames.Ipo, Beta = options.IpoBeta },
        Reinforce => new LearnerOptions { Objective = ObjectiveNames.Reinforce },
        Ppo => new LearnerOptions { Objective = ObjectiveNames.Ppo, PpoClipRange = options.PpoClipRange },
        BestOfN => new LearnerOptions { Objective = ObjectiveNames.BestOfN },
        Sft => new LearnerOptions { Objective = ObjectiveNames.Sft },
        Rwr => new LearnerOptions { Objective = ObjectiveNames.Rwr, RwrTemperature = options.RwrTemperature },
        NegativeGradientSft => new LearnerOptions { Objective = ObjectiveNames.NegativeGradientSft, NegativeWeight = 1.0 },
        _ => throw new ArgumentException($"unknown length method '{method}'; valid methods: {string.Join(", ", All)}", nameof(method)),
    };

    public static PairingMode Pairing(string method) => method == Sft ? PairingMode.AllPairs : PairingMode.BestVsWorst;
}
