namespace PrefOnline.Learning.Objectives;

/// <summary>
/// Which objective to optimise and its hyper-parameters. Checked once, when a
/// <see cref="TrainingObjective"/> is built (never inside the loss): an unknown name fails listing the
/// valid ones, an out-of-range value fails naming the field. Only the fields the chosen objective
/// reads are checked; the defaults are the usual published ones.
/// </summary>
public sealed record ObjectiveOptions
{
    /// <summary>One of <see cref="ObjectiveCatalog.All"/>'s names.</summary>
    public string Name { get; init; } = ObjectiveNames.Dpo;

    /// <summary>β of DPO/cDPO (inverse temperature of the implicit reward; 0.1 as in the DPO paper and
    /// TRL) and of IPO (the target margin is 1/(2β)).</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>cDPO label smoothing ε in (0, 0.5): the assumed probability that a label is flipped
    /// (Mitchell 2023). Must stay 0 for every other objective, so it is never applied by accident.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>RWR temperature τ of the weights exp(r/τ), in reward units.</summary>
    public double RwrTemperature { get; init; } = 1.0;

    /// <summary>RWR weights are clipped to at most this (the paper's code clips at 20), so one lucky
    /// sample cannot dominate a batch. +∞ disables clipping.</summary>
    public double RwrMaxWeight { get; init; } = 20.0;

    /// <summary>PPO clip range ε: the ratio is clipped to [1 − ε, 1 + ε] (0.2 as in PPO and the paper's code).</summary>
    public double PpoClipRange { get; init; } = 0.2;

    /// <summary>β of the negative-gradient SFT term +β·log π(worst) (the paper's bandit "worst_action").</summary>
    public double NegativeWeight { get; init; } = 0.1;

    /// <summary>The estimator of the optional per-token KL-to-reference penalty.</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.Squared;

    /// <summary>Throws <see cref="ArgumentException"/> for an unknown name or a value the objective cannot use
    /// (the objective's own rules are its <see cref="ObjectiveDescription.Validate"/>).</summary>
    public void Validate()
    {
        var description = ObjectiveCatalog.Get(Name);
        if (!Enum.IsDefined(KlEstimator))
            throw new ArgumentException($"unknown KL estimator {(int)KlEstimator}; valid: {string.Join(", ", Enum.GetNames<KlEstimator>())}", nameof(KlEstimator));
        if (KlEstimator == KlEstimator.FullVocabulary)
            throw new ArgumentException("the KL penalty is a sampled estimator (LogRatio, Squared or LowVariance); FullVocabulary is for the reported KL (KlMetric)", nameof(KlEstimator));
        description.Validate(this);
        if (LabelSmoothing != 0 && !description.Hyperparameters.Contains(nameof(LabelSmoothing)))
            throw new ArgumentException($"label smoothing {LabelSmoothing} only applies to objectives that read it ({string.Join(", ", ObjectiveCatalog.All.Where(d => d.Hyperparameters.Contains(nameof(LabelSmoothing))).Select(d => d.Name))}), not '{Name}'", nameof(LabelSmoothing));
    }
}
