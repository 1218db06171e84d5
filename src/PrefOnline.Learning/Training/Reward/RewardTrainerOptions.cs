using PrefOnline.Learning.Configuration;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Learning.Training.Reward;

/// <summary>
/// Configuration section <c>Reward</c>: online training of the reward model from incoming labels. Pairs
/// train a Bradley–Terry loss; ratings a regression onto the same logit scale (see
/// <see cref="RatingLogitRange"/>), with a held-out share measured for accuracy. Ratings outside
/// [RatingMin, RatingMax] are dead-lettered as <c>out-of-range</c> at the worker's intake; the trainer refuses
/// them too. The defaults are the worker's (config/README.md). Checked once (<see cref="Problems"/>).
/// </summary>
public sealed record RewardTrainerOptions : IValidatedOptions
{
    public const string SectionName = "Reward";

    /// <summary>AdamW learning rate of the reward model (weight decay 0).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>New labels per reward-model step (a step runs as soon as this many are queued).</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Past labels replayed in each step beside the new ones, drawn uniformly from the window,
    /// so the model keeps fitting what it learned before (no catastrophic forgetting of old labels).</summary>
    public int ReplayPerStep { get; set; } = 32;

    /// <summary>Trained labels kept for replay (FIFO): bounds memory whatever the label rate.</summary>
    public int WindowCapacity { get; set; } = 4096;

    /// <summary>Bradley–Terry label smoothing ε in [0, 0.5): the assumed rate of flipped human labels.</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>The deployment's rating scale: ratings outside [RatingMin, RatingMax] are refused (dead-lettered as out-of-range at intake).</summary>
    public double RatingMin { get; set; } = -10;

    /// <summary>Upper end of the rating scale.</summary>
    public double RatingMax { get; set; } = 10;

    /// <summary>
    /// How ratings map to the Bradley–Terry scale. A rating y becomes the regression target
    /// t = R·((y − min)/(max − min) − ½), so the scale spans R logits centred on 0: a top-rated and a
    /// bottom-rated completion then differ by R in reward, i.e. P(top ≻ bottom) = σ(R). Pairs alone
    /// leave the reward's offset free; ratings pin it to this centre.
    /// </summary>
    public double RatingLogitRange { get; set; } = 8;

    /// <summary>Weight of the rating regression term beside the pair term (both are per-label means).</summary>
    public double RatingWeight { get; set; } = 1;

    /// <summary>Share of labels held out (by id hash, <see cref="HeldOutSplit"/>) to measure accuracy; never trained on.</summary>
    public double HeldOutFraction { get; set; } = 0.1;

    /// <summary>Most held-out labels kept for the accuracy measurement (the newest; pairs and ratings each).</summary>
    public int HeldOutCapacity { get; set; } = 512;

    /// <summary>Steps between held-out evaluations (a full pass over the held-out window, no grad).</summary>
    public int EvaluateEvery { get; set; } = 20;

    /// <summary>No held-out accuracy is reported before this many held-out pairs (fewer are noise).</summary>
    public int MinHeldOutPairs { get; set; } = 20;

    /// <summary>Global L2 gradient-norm clip; 0 = none (a non-finite norm still skips the step).</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Seeds the replay draws and the reward model's dropout generator.</summary>
    public ulong Seed { get; set; } = 5;

    /// <summary>
    /// The reward model's verdicts on incoming human pairs count towards the guardrail's accuracy check only
    /// after it has trained on this many labels: an untrained head ranks at chance, which says nothing
    /// about drift and would trip the guardrail at every fresh start.
    /// </summary>
    public long GuardrailWarmUpLabels { get; set; } = 256;

    /// <summary>The reward model's AdamW (torch.optim.AdamW's default betas and eps, no weight decay).</summary>
    public AdamWOptions OptimizerParameters() => new() { LearningRate = LearningRate, WeightDecay = 0 };

    /// <summary>A rating's regression target on the Bradley–Terry logit scale.</summary>
    public double RatingTarget(double rating) => RatingLogitRange * ((rating - RatingMin) / (RatingMax - RatingMin) - 0.5);

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(LearningRate), LearningRate, 0, 1, minExclusive: true);
        p.Range(nameof(BatchSize), BatchSize, 1, 100_000);
        p.Range(nameof(ReplayPerStep), ReplayPerStep, 0, 100_000);
        p.Range(nameof(WindowCapacity), WindowCapacity, 0, 10_000_000);
        p.Range(nameof(LabelSmoothing), LabelSmoothing, 0, 0.499);
        if (!double.IsFinite(RatingMin) || !double.IsFinite(RatingMax) || !(RatingMax > RatingMin))
            p.Add(nameof(RatingMax), $"must be finite and above RatingMin ({RatingMin}) (got {RatingMax})");
        p.Positive(nameof(RatingLogitRange), RatingLogitRange);
        p.Range(nameof(RatingWeight), RatingWeight, 0, 1e6);
        p.Range(nameof(HeldOutFraction), HeldOutFraction, 0, 0.9);
        p.Range(nameof(HeldOutCapacity), HeldOutCapacity, 1, 1_000_000);
        p.Range(nameof(EvaluateEvery), EvaluateEvery, 1, 1_000_000);
        p.Range(nameof(MinHeldOutPairs), MinHeldOutPairs, 1, 1_000_000);
        p.Range(nameof(MaxGradNorm), MaxGradNorm, 0, 1e6);
        p.Range(nameof(GuardrailWarmUpLabels), GuardrailWarmUpLabels, 0, long.MaxValue);
        return p.Items;
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem (<see cref="Problems"/>), for library callers.</summary>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
    }
}
