namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// Configuration section <c>Guardrails</c>. Every threshold is here, with the reason for its default;
/// <see cref="Validate"/> runs at start-up (the worker registers it with ValidateOnStart).
/// </summary>
public sealed record GuardrailOptions
{
    public const string SectionName = "Guardrails";

    /// <summary>What a trip does. Rollback by default: the served policy returns to the last version that passed every check.</summary>
    public GuardrailAction Action { get; init; } = GuardrailAction.Rollback;

    /// <summary>
    /// CUSUM on the on-policy reward, fed once per update with the batch's mean reward-model score
    /// (per-update means are far less noisy than single samples, and the update rate, not the sample
    /// rate, sets how often a false alarm can happen).
    /// </summary>
    public DriftStreamOptions ModelReward { get; init; } = new();

    /// <summary>CUSUM on human ratings, one observation per rating record. Longer warm-up: ratings are coarse (often integers).</summary>
    public DriftStreamOptions HumanRating { get; init; } = new() { Cusum = new CusumOptions { WarmUp = 100 } };

    /// <summary>Drift score (max(g⁺, g⁻)/h) at or above which a stream is a warning, and <c>good</c> does not advance. 0.5 = halfway to an alarm.</summary>
    public double DriftWarningScore { get; init; } = 0.5;

    /// <summary>
    /// Maximum KL(policy ‖ reference), in the units of the learner's <c>kl_to_reference</c> (nats per
    /// sequence, averaged over the batch). Infinity disables the check. The default suits short completions
    /// (the demo moves its answers from ~12 letters to 0–3 for 7–11 nats); size it to how far your users'
    /// preferences may legitimately pull the policy (KL grows with completion length).
    /// </summary>
    public double KlBudget { get; init; } = 20.0;

    /// <summary>A KL at or above this fraction of the budget is a warning.</summary>
    public double KlWarningFraction { get; init; } = 0.8;

    /// <summary>Consecutive updates over budget before tripping: one noisy KL estimate should not roll back a model.</summary>
    public int KlConsecutiveToTrip { get; init; } = 2;

    /// <summary>
    /// The reward model's rolling accuracy on incoming human pairs (chosen scored above rejected) below
    /// this trips — once the model has shown it learned (reached floor + <see cref="AccuracyWarningMargin"/>;
    /// before that it is only a warning). The pairs are the policy's own samples, so as the policy converges
    /// they become near-ties that users label almost at random and an accurate model falls towards 0.5 (the
    /// demo's did, to 0.53, within a minute). What signals drift is a model that disagrees with users more
    /// often than a coin — their preference moved away from what it learned: 0.40 over a full window of 200
    /// pairs is 2.8 standard deviations below a coin.
    /// </summary>
    public double AccuracyFloor { get; init; } = 0.40;

    /// <summary>Accuracy below floor + margin is a warning.</summary>
    public double AccuracyWarningMargin { get; init; } = 0.05;

    /// <summary>Rolling window of human pairs for the accuracy (the most recent ones).</summary>
    public int AccuracyWindow { get; init; } = 200;

    /// <summary>No accuracy verdict before this many pairs in the window: 50 pairs at 0.5 still stray ±0.07, noise, not evidence.</summary>
    public int AccuracyMinPairs { get; init; } = 200;

    /// <summary>Consecutive updates with non-finite metrics before tripping (each one is rejected regardless).</summary>
    public int NonFiniteTripAfter { get; init; } = 3;

    /// <summary>With <see cref="GuardrailAction.Alert"/>: how long the tripped state stays visible after the last failing check.</summary>
    public TimeSpan AlertHold { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>With <see cref="GuardrailAction.PauseUpdates"/>: auto-resume after this long. Zero = stay paused until <see cref="Guardrail.Resume"/> or a restart.</summary>
    public TimeSpan PauseDuration { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// A trip within this time after a completed rollback pauses updates instead of rolling back again:
    /// when the world changed (users' preferences moved), the good checkpoint trips too and rolling back
    /// in a loop helps no one.
    /// </summary>
    public TimeSpan RollbackCooldown { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// A checkpointed version becomes <c>good</c> (the rollback target, <c>prefonline_good_version</c>) once this
    /// many later updates also passed every check — from the first updates on, not only after the detectors'
    /// warm-ups — unless a drift detector is halfway to an alarm or the version lies inside the model-reward
    /// detector's run towards one; so <c>good</c> trails the newest version by about this many updates and
    /// versions written inside a drift's detection delay do not become rollback targets. The full rule:
    /// docs/OPERATIONS.md, "The good pointer".
    /// </summary>
    public int GoodConfirmations { get; init; } = 2;

    public IReadOnlyList<string> Validate()
    {
        var p = SectionName;
        var errors = new List<string>();
        if (Action is not (GuardrailAction.Alert or GuardrailAction.PauseUpdates or GuardrailAction.Rollback))
            errors.Add($"{p}:Action must be Alert, PauseUpdates or Rollback (got {Action}).");
        if (ModelReward is null) errors.Add($"{p}:ModelReward is required.");
        else errors.AddRange(ModelReward.Validate($"{p}:ModelReward"));
        if (HumanRating is null) errors.Add($"{p}:HumanRating is required.");
        else errors.AddRange(HumanRating.Validate($"{p}:HumanRating"));
        if (!(DriftWarningScore > 0 && DriftWarningScore <= 1)) errors.Add($"{p}:DriftWarningScore must be in (0, 1] (got {DriftWarningScore}).");
        if (!(KlBudget > 0)) errors.Add($"{p}:KlBudget must be positive, or Infinity to disable (got {KlBudget}).");
        if (!(KlWarningFraction > 0 && KlWarningFraction <= 1)) errors.Add($"{p}:KlWarningFraction must be in (0, 1] (got {KlWarningFraction}).");
        if (KlConsecutiveToTrip < 1) errors.Add($"{p}:KlConsecutiveToTrip must be at least 1 (got {KlConsecutiveToTrip}).");
        if (!(AccuracyFloor >= 0 && AccuracyFloor <= 1)) errors.Add($"{p}:AccuracyFloor must be in [0, 1] (got {AccuracyFloor}).");
        if (!(AccuracyWarningMargin >= 0 && AccuracyWarningMargin <= 1)) errors.Add($"{p}:AccuracyWarningMargin must be in [0, 1] (got {AccuracyWarningMargin}).");
        if (AccuracyWindow < 1) errors.Add($"{p}:AccuracyWindow must be at least 1 (got {AccuracyWindow}).");
        if (AccuracyMinPairs < 1 || AccuracyMinPairs > AccuracyWindow)
            errors.Add($"{p}:AccuracyMinPairs must be between 1 and AccuracyWindow ({AccuracyWindow}) (got {AccuracyMinPairs}).");
        if (NonFiniteTripAfter < 1) errors.Add($"{p}:NonFiniteTripAfter must be at least 1 (got {NonFiniteTripAfter}).");
        if (AlertHold < TimeSpan.Zero) errors.Add($"{p}:AlertHold must not be negative (got {AlertHold}).");
        if (PauseDuration < TimeSpan.Zero) errors.Add($"{p}:PauseDuration must not be negative (got {PauseDuration}).");
        if (RollbackCooldown < TimeSpan.Zero) errors.Add($"{p}:RollbackCooldown must not be negative (got {RollbackCooldown}).");
        if (GoodConfirmations < 0) errors.Add($"{p}:GoodConfirmations must not be negative (got {GoodConfirmations}).");
        return errors;
    }
}
