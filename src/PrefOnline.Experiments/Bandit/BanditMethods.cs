using PrefOnline.Learning.Objectives;

namespace PrefOnline.Experiments.Bandit;

/// <summary>The bandit's methods: each is one objective of <see cref="Losses"/> plus how its batch is
/// turned into pairs or advantages.</summary>
public static class BanditMethods
{
    public const string BestOfN = ObjectiveNames.BestOfN;
    public const string Rwr = ObjectiveNames.Rwr;
    public const string Reinforce = ObjectiveNames.Reinforce;
    public const string Ppo = ObjectiveNames.Ppo;
    public const string Dpo = ObjectiveNames.Dpo;
    public const string Ipo = ObjectiveNames.Ipo;
    public const string NegativeGradientSft = ObjectiveNames.NegativeGradientSft;

    /// <summary>What runs when no method is named: the paper's six.</summary>
    public static IReadOnlyList<string> Default { get; } = [BestOfN, Rwr, Reinforce, Ppo, Dpo, Ipo];

    /// <summary>Every method the bandit can run.</summary>
    public static IReadOnlyList<string> All { get; } = [BestOfN, Rwr, Reinforce, Ppo, Dpo, Ipo, NegativeGradientSft];

    /// <summary>Methods that push down the likelihood of worse samples (the paper's "negative gradient").</summary>
    public static bool HasNegativeGradient(string method) => ObjectiveCatalog.Get(method).NegativeGradient;
}
