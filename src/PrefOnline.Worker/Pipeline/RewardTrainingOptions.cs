using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.Optimization;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Configuration section <c>Reward</c>: online training of the reward model from incoming labels
/// (Bradley–Terry on pairs, regression on ratings mapped to the same logit scale), with a held-out
/// share measured for accuracy. Ratings outside [RatingMin, RatingMax] are dead-lettered as <c>out-of-range</c> at
/// intake (<see cref="Hosting.WorkerSettings.InputValidation"/>); the trainer refuses them too.
/// </summary>
public sealed class RewardTrainingOptions : IValidatedOptions
{
    public const string SectionName = "Reward";

    /// <summary>AdamW learning rate of the reward model.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>New labels per reward-model step (a step runs as soon as this many are queued).</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Past labels replayed beside the new ones in each step.</summary>
    public int ReplayPerStep { get; set; } = 32;

    /// <summary>Trained labels kept for replay (FIFO).</summary>
    public int WindowCapacity { get; set; } = 4096;

    /// <summary>Bradley–Terry label smoothing in [0, 0.5).</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>The deployment's rating scale: ratings outside [RatingMin, RatingMax] are dead-lettered as out-of-range at intake.</summary>
    public double RatingMin { get; set; } = -10;

    /// <summary>Upper end of the rating scale.</summary>
    public double RatingMax { get; set; } = 10;

    /// <summary>Logits the rating scale spans on the reward model's scale.</summary>
    public double RatingLogitRange { get; set; } = 8;

    /// <summary>Weight of the rating term beside the pair term.</summary>
    public double RatingWeight { get; set; } = 1;

    /// <summary>Share of labels held out (by id hash) to measure accuracy; never trained on.</summary>
    public double HeldOutFraction { get; set; } = 0.1;

    /// <summary>Most held-out labels kept for the accuracy measurement (the newest).</summary>
    public int HeldOutCapacity { get; set; } = 512;

    /// <summary>Steps between held-out evaluations.</summary>
    public int EvaluateEvery { get; set; } = 20;

    /// <summary>No held-out accuracy is reported before this many held-out pairs.</summary>
    public int MinHeldOutPairs { get; set; } = 20;

    /// <summary>Global gradient-norm clip (0 = none).</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Seed of the reward trainer's draws (replay sampling, dropout).</summary>
    public ulong Seed { get; set; } = 5;

    /// <summary>
    /// The reward model's verdicts on incoming human pairs count towards the guardrail's accuracy check only
    /// after it has trained on this many labels: an untrained head ranks at chance, which says nothing
    /// about drift and would trip the guardrail at every fresh start.
    /// </summary>
    public long GuardrailWarmUpLabels { get; set; } = 256;

    public RewardTrainerOptions ToTrainerOptions() => new()
    {
        Optimizer = new AdamWOptions { LearningRate = LearningRate, WeightDecay = 0 },
        BatchSize = BatchSize,
        ReplayPerStep = ReplayPerStep,
        WindowCapacity = WindowCapacity,
        LabelSmoothing = LabelSmoothing,
        RatingMin = RatingMin,
        RatingMax = RatingMax,
        RatingLogitRange = RatingLogitRange,
        RatingWeight = RatingWeight,
        HeldOutFraction = HeldOutFraction,
        HeldOutCapacity = HeldOutCapacity,
        EvaluateEvery = EvaluateEvery,
        MinHeldOutPairs = MinHeldOutPairs,
        MaxGradNorm = MaxGradNorm > 0 ? MaxGradNorm : null,
        ScoreIncomingPairs = true,
        Seed = Seed,
    };

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
        if (p.Items.Count == 0) p.From(nameof(LearningRate), () => ToTrainerOptions().Validate());
        return p.Items;
    }
}
