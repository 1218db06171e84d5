using PrefOnline.Learning.Optimization;

namespace PrefOnline.Learning.Training.Reward;

/// <summary>
/// Online reward-model training. Pairs train a Bradley–Terry loss; ratings a regression onto the same
/// logit scale (see <see cref="RatingLogitRange"/>). Checked once when the trainer is built.
/// </summary>
public sealed record RewardTrainerOptions
{
    /// <summary>The reward model's own AdamW.</summary>
    public AdamWOptions Optimizer { get; init; } = new() { LearningRate = 1e-4, WeightDecay = 0 };

    /// <summary>New labels per step: a step runs as soon as this many are pending.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Past labels replayed in each step beside the new ones, drawn uniformly from the window,
    /// so the model keeps fitting what it learned before (no catastrophic forgetting of old labels).</summary>
    public int ReplayPerStep { get; init; } = 16;

    /// <summary>Trained labels kept for replay (FIFO): bounds memory whatever the label rate.</summary>
    public int WindowCapacity { get; init; } = 4096;

    /// <summary>Bradley–Terry label smoothing ε in [0, 0.5): the assumed rate of flipped human labels.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>The rating scale: values outside [min, max] are refused.</summary>
    public double RatingMin { get; init; }

    public double RatingMax { get; init; } = 1;

    /// <summary>
    /// How ratings map to the Bradley–Terry scale. A rating y becomes the regression target
    /// t = R·((y − min)/(max − min) − ½), so the scale spans R logits centred on 0: a top-rated and a
    /// bottom-rated completion then differ by R in reward, i.e. P(top ≻ bottom) = σ(R) (0.982 for the
    /// default R = 4), and a one-star difference on a 1–5 scale is R/4 logits (σ(1) = 0.73). Pairs alone
    /// leave the reward's offset free; ratings pin it to this centre.
    /// </summary>
    public double RatingLogitRange { get; init; } = 4;

    /// <summary>Weight of the rating regression term beside the pair term (both are per-label means).</summary>
    public double RatingWeight { get; init; } = 1;

    /// <summary>Share of incoming labels held out (by id hash, <see cref="HeldOutSplit"/>).</summary>
    public double HeldOutFraction { get; init; } = 0.1;

    /// <summary>Held-out labels kept (most recent; pairs and ratings each): accuracy is measured on these.</summary>
    public int HeldOutCapacity { get; init; } = 512;

    /// <summary>Steps between held-out evaluations (a full pass over the held-out window, no grad).</summary>
    public int EvaluateEvery { get; init; } = 20;

    /// <summary>Held-out accuracy is reported only once this many held-out pairs exist (fewer are noise).</summary>
    public int MinHeldOutPairs { get; init; } = 20;

    /// <summary>Global L2 gradient-norm clip; null = unclipped (a non-finite norm still skips the step).</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    /// <summary>Score each incoming pair with the current model before it is queued (one forward of two
    /// rows per pair), for <see cref="PairIntake.Agreed"/>.</summary>
    public bool ScoreIncomingPairs { get; init; } = true;

    /// <summary>Seeds the replay draws and the reward model's dropout generator.</summary>
    public ulong Seed { get; init; } = 1;

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Optimizer, nameof(Optimizer));
        Optimizer.Validate();
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be at least 1");
        if (ReplayPerStep < 0) throw new ArgumentOutOfRangeException(nameof(ReplayPerStep), ReplayPerStep, "must be ≥ 0");
        if (WindowCapacity < 0) throw new ArgumentOutOfRangeException(nameof(WindowCapacity), WindowCapacity, "must be ≥ 0");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 0.5)) throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 0.5)");
        if (!double.IsFinite(RatingMin) || !double.IsFinite(RatingMax) || !(RatingMax > RatingMin))
            throw new ArgumentOutOfRangeException(nameof(RatingMax), RatingMax, $"the rating scale [{RatingMin}, {RatingMax}] must be finite with max > min");
        if (!(RatingLogitRange > 0) || double.IsInfinity(RatingLogitRange)) throw new ArgumentOutOfRangeException(nameof(RatingLogitRange), RatingLogitRange, "must be a positive finite number of logits");
        if (!(RatingWeight >= 0) || double.IsInfinity(RatingWeight)) throw new ArgumentOutOfRangeException(nameof(RatingWeight), RatingWeight, "must be a finite number ≥ 0");
        if (!(HeldOutFraction >= 0 && HeldOutFraction < 1)) throw new ArgumentOutOfRangeException(nameof(HeldOutFraction), HeldOutFraction, "must be in [0, 1)");
        if (HeldOutCapacity < 1) throw new ArgumentOutOfRangeException(nameof(HeldOutCapacity), HeldOutCapacity, "must be at least 1");
        if (EvaluateEvery < 1) throw new ArgumentOutOfRangeException(nameof(EvaluateEvery), EvaluateEvery, "must be at least 1");
        if (MinHeldOutPairs < 1) throw new ArgumentOutOfRangeException(nameof(MinHeldOutPairs), MinHeldOutPairs, "must be at least 1");
        if (MaxGradNorm is { } max && (!(max > 0) || double.IsInfinity(max))) throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), max, "must be a positive finite norm (null disables clipping)");
    }

    /// <summary>A rating's regression target on the Bradley–Terry logit scale.</summary>
    public double RatingTarget(double rating) => RatingLogitRange * ((rating - RatingMin) / (RatingMax - RatingMin) - 0.5);
}
