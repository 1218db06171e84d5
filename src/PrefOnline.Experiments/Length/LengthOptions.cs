namespace PrefOnline.Experiments.Length;

/// <summary>
/// The length experiment: a <c>tiny</c> GPT-2 (byte tokenizer) fitted by SFT onto the
/// <see cref="LengthCorpus"/>, then trained by each method on each task, offline (samples from the
/// reference) and online (samples from the current policy), with the same updates, batch and sample
/// budget; plus a sample-reuse sweep and a batch-size sweep of online runs on one task.
/// </summary>
public sealed record LengthOptions
{
    // ---- the corpus and the reference --------------------------------------------------------------

    /// <summary>Longest valid completion (letters).</summary>
    public int MaxLength { get; init; } = 20;

    /// <summary>Mean and spread of the corpus's lengths: mode 12, so lengths 1–3 carry ~1.5 % of the mass
    /// (the min-length peak is in a low-likelihood region) while the mode task's peak is the most likely length.</summary>
    public double MeanLength { get; init; } = 12;

    public double LengthStd { get; init; } = 4;

    /// <summary>Prompts are the first this-many letters ("a:" … "h:").</summary>
    public int PromptLetters { get; init; } = 8;

    /// <summary>SFT onto the corpus: steps, sequences per step, peak learning rate (decayed linearly to 10 %).</summary>
    public int PretrainSteps { get; init; } = 300;

    public int PretrainBatch { get; init; } = 32;

    public double PretrainLearningRate { get; init; } = 3e-3;

    // ---- the protocol ------------------------------------------------------------------------------

    public IReadOnlyList<LengthTask> Tasks { get; init; } = [LengthTask.Min, LengthTask.Mode, LengthTask.Skew];

    public IReadOnlyList<string> Methods { get; init; } = LengthMethods.Default;

    public IReadOnlyList<LengthMode> Modes { get; init; } = [LengthMode.Offline, LengthMode.Online];

    /// <summary>Seeds 1..Seeds.</summary>
    public int Seeds { get; init; } = 3;

    /// <summary>Learner updates per run.</summary>
    public int Updates { get; init; } = 40;

    /// <summary>Prompts per update (the batch); each gets K samples.</summary>
    public int PromptsPerUpdate { get; init; } = 8;

    /// <summary>K: samples per prompt (pairs and leave-one-out baselines need at least 2).</summary>
    public int SamplesPerPrompt { get; init; } = 4;

    /// <summary>T: gradient steps per update on its batch (sample reuse) in the main grid.</summary>
    public int InnerSteps { get; init; } = 2;

    /// <summary>The reuse sweep: T values of online runs on <see cref="SweepTask"/> (same samples, T steps each). Empty skips it.</summary>
    public IReadOnlyList<int> ReuseSweep { get; init; } = [1, 2, 4, 8];

    /// <summary>The batch sweep: prompts per update of online runs on <see cref="SweepTask"/>, at the main
    /// grid's total sample budget (a bigger batch means fewer updates). Empty skips it.</summary>
    public IReadOnlyList<int> BatchSweep { get; init; } = [4, 8, 16];

    /// <summary>Methods the sweeps run (each sweep point is one online run per method and seed).</summary>
    public IReadOnlyList<string> SweepMethods { get; init; } = [LengthMethods.Dpo, LengthMethods.Reinforce];

    public LengthTask SweepTask { get; init; } = LengthTask.Min;

    /// <summary>The policy is measured (exactly, see <see cref="LengthExperiment.Evaluate"/>) every this-many updates and at the end.</summary>
    public int EvaluateEvery { get; init; } = 5;

    // ---- method hyper-parameters --------------------------------------------------------------------

    /// <summary>
    /// AdamW learning rate, the same for every method and mode (the comparison is about the data and the
    /// objective, not per-method tuning). Chosen on the quick min task from {1e-3, 3e-4, 1e-4}: at 1e-3
    /// on-policy runs collapse onto the empty completion (invalid, reward 0, and then no signal is left);
    /// at 3e-4 offline DPO/IPO over-optimise to well below the reference; 1e-4 is the largest where
    /// training behaves (every online run ends near the optimum; offline DPO/REINFORCE still drift, which is the finding).
    /// </summary>
    public double LearningRate { get; init; } = 1e-4;

    public double DpoBeta { get; init; } = 0.1;

    /// <summary>IPO's β: the target log-ratio margin is 1/(2β) nats.</summary>
    public double IpoBeta { get; init; } = 0.1;

    public double PpoClipRange { get; init; } = 0.2;

    public double RwrTemperature { get; init; } = 0.1;

    /// <summary>A KL-to-reference penalty coefficient for every method (0: the comparison is about the data;
    /// DPO and IPO keep their implicit leash through β).</summary>
    public double KlCoefficient { get; init; }

    /// <summary>The skew task's offline acceptance sharpness s in σ((L − mode)/s).</summary>
    public double SkewSharpness { get; init; } = 2;

    /// <summary>libtorch intra-op threads of the experiment's tensor thread. 1: the tensors are tiny (at most
    /// 64 rows × 22 tokens × width 128), and on a busy machine OpenMP's barrier makes 2 threads slower
    /// (measured under load: the same quick run took 22–32 s with 1 thread, 40–108 s with 2).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Samples one run draws: updates × prompts × K.</summary>
    public long SampleBudget => (long)Updates * PromptsPerUpdate * SamplesPerPrompt;

    /// <summary>
    /// The <c>--quick</c> preset: one seed, 120 SFT steps, 20 updates, one method per family (contrastive
    /// dpo, on-policy RL reinforce, maximum-likelihood best_of_n) on all three tasks, and dpo's sweeps at
    /// T ∈ {1, 4} and 4 or 16 prompts per update; under a minute on 2 cores.
    /// </summary>
    public LengthOptions Quick() => this with
    {
        Seeds = 1,
        PretrainSteps = 120,
        Updates = 20,
        Methods = [LengthMethods.Dpo, LengthMethods.Reinforce, LengthMethods.BestOfN],
        ReuseSweep = [1, 4],
        BatchSweep = [4, 16],
        SweepMethods = [LengthMethods.Dpo],
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value < 1) throw new ArgumentOutOfRangeException(name, value, "must be at least 1");
        }

        static void PositiveFinite(double value, string name)
        {
            if (!(value > 0) || double.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, value, "must be a positive finite number");
        }

        if (MaxLength < 2 || MaxLength > 100) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "must be in [2, 100]");
        if (!(MeanLength >= 1 && MeanLength <= MaxLength)) throw new ArgumentOutOfRangeException(nameof(MeanLength), MeanLength, $"must be in [1, {MaxLength}]");
        PositiveFinite(LengthStd, nameof(LengthStd));
        if (PromptLetters < 1 || PromptLetters > 26) throw new ArgumentOutOfRangeException(nameof(PromptLetters), PromptLetters, "must be in [1, 26]");
        if (PretrainSteps < 0) throw new ArgumentOutOfRangeException(nameof(PretrainSteps), PretrainSteps, "must be ≥ 0");
        Positive(PretrainBatch, nameof(PretrainBatch));
        PositiveFinite(PretrainLearningRate, nameof(PretrainLearningRate));
        if (Tasks is null || Tasks.Count == 0) throw new ArgumentException("at least one task is needed", nameof(Tasks));
        foreach (var t in Tasks) if (!Enum.IsDefined(t)) throw new ArgumentException($"unknown task {(int)t}", nameof(Tasks));
        if (Tasks.Distinct().Count() != Tasks.Count) throw new ArgumentException("a task is listed twice", nameof(Tasks));
        CheckMethods(Methods, nameof(Methods), allowEmpty: false);
        if (Modes is null || Modes.Count == 0) throw new ArgumentException("at least one mode is needed", nameof(Modes));
        foreach (var m in Modes) if (!Enum.IsDefined(m)) throw new ArgumentException($"unknown mode {(int)m}", nameof(Modes));
        if (Modes.Distinct().Count() != Modes.Count) throw new ArgumentException("a mode is listed twice", nameof(Modes));
        Positive(Seeds, nameof(Seeds));
        Positive(Updates, nameof(Updates));
        Positive(PromptsPerUpdate, nameof(PromptsPerUpdate));
        if (SamplesPerPrompt < 2) throw new ArgumentOutOfRangeException(nameof(SamplesPerPrompt), SamplesPerPrompt, "pairs and leave-one-out baselines need at least 2 samples per prompt");
        Positive(InnerSteps, nameof(InnerSteps));
        if (ReuseSweep is null) throw new ArgumentException("use an empty list to skip the reuse sweep", nameof(ReuseSweep));
        foreach (var t in ReuseSweep) Positive(t, nameof(ReuseSweep));
        if (ReuseSweep.Distinct().Count() != ReuseSweep.Count) throw new ArgumentException("a reuse value is listed twice", nameof(ReuseSweep));
        if (BatchSweep is null) throw new ArgumentException("use an empty list to skip the batch sweep", nameof(BatchSweep));
        foreach (var b in BatchSweep)
        {
            Positive(b, nameof(BatchSweep));
            if ((long)Updates * PromptsPerUpdate / b < 1)
                throw new ArgumentOutOfRangeException(nameof(BatchSweep), b, $"a batch of {b} prompts leaves no update within the sample budget of {Updates} × {PromptsPerUpdate} prompts");
        }
        if (BatchSweep.Distinct().Count() != BatchSweep.Count) throw new ArgumentException("a batch size is listed twice", nameof(BatchSweep));
        CheckMethods(SweepMethods, nameof(SweepMethods), allowEmpty: true);
        if (!Enum.IsDefined(SweepTask)) throw new ArgumentException($"unknown task {(int)SweepTask}", nameof(SweepTask));
        Positive(EvaluateEvery, nameof(EvaluateEvery));
        PositiveFinite(LearningRate, nameof(LearningRate));
        PositiveFinite(DpoBeta, nameof(DpoBeta));
        PositiveFinite(IpoBeta, nameof(IpoBeta));
        if (!(PpoClipRange > 0 && PpoClipRange < 1)) throw new ArgumentOutOfRangeException(nameof(PpoClipRange), PpoClipRange, "must be in (0, 1)");
        PositiveFinite(RwrTemperature, nameof(RwrTemperature));
        if (!(KlCoefficient >= 0) || double.IsInfinity(KlCoefficient)) throw new ArgumentOutOfRangeException(nameof(KlCoefficient), KlCoefficient, "must be a finite number ≥ 0");
        PositiveFinite(SkewSharpness, nameof(SkewSharpness));
        Positive(Threads, nameof(Threads));
    }

    private static void CheckMethods(IReadOnlyList<string>? methods, string name, bool allowEmpty)
    {
        if (methods is null || (!allowEmpty && methods.Count == 0)) throw new ArgumentException("at least one method is needed", name);
        foreach (var m in methods)
            if (!LengthMethods.All.Contains(m, StringComparer.Ordinal))
                throw new ArgumentException($"unknown length method '{m}'; valid methods: {string.Join(", ", LengthMethods.All)}", name);
        if (methods.Distinct(StringComparer.Ordinal).Count() != methods.Count) throw new ArgumentException("a method is listed twice", name);
    }
}
