using PrefOnline.Experiments.Length;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// <c>Demo:Policy</c>: the demo's initial policy, the length experiment's reference (PrefOnline.Learning's
/// <see cref="LengthCorpus"/> and <see cref="LengthExperiment.Pretrain"/>): a tiny byte-level GPT-2 fitted by
/// SFT on a synthetic corpus where each prompt ("a:" … "h:") is answered by continuing the alphabet for L
/// letters, L drawn around <see cref="MeanLength"/>. The simulated users' default preference, length:4, then
/// peaks where this reference puts little mass (4-letter answers carry ~1.4 % of the corpus), as in the paper. Fitted
/// once: it becomes the first checkpoint, so a restart never refits.
/// </summary>
public sealed class DemoPolicyOptions
{
    /// <summary>Longest answer of the corpus (letters).</summary>
    public int MaxLength { get; set; } = 20;

    /// <summary>Mean answer length of the corpus (letters).</summary>
    public double MeanLength { get; set; } = 12;

    /// <summary>Spread of the answer lengths.</summary>
    public double LengthStd { get; set; } = 4;

    /// <summary>Prompts are the first this-many letters ("a:" … ).</summary>
    public int PromptLetters { get; set; } = 8;

    /// <summary>SFT steps of the fit (a few seconds each 100 on 2 cores).</summary>
    public int FitSteps { get; set; } = 300;

    /// <summary>Sequences per SFT step.</summary>
    public int FitBatch { get; set; } = 64;

    /// <summary>Peak learning rate of the fit (decayed linearly to 10 %).</summary>
    public double FitLearningRate { get; set; } = 3e-3;

    /// <summary>Seed of the initialisation and the corpus draws.</summary>
    public int Seed { get; set; } = 1;

    public LengthCorpus Corpus() => new(MaxLength, MeanLength, LengthStd, PromptLetters);

    public LengthOptions FitOptions() => new() { MaxLength = MaxLength, MeanLength = MeanLength, LengthStd = LengthStd, PromptLetters = PromptLetters, PretrainSteps = FitSteps, PretrainBatch = FitBatch, PretrainLearningRate = FitLearningRate };

    public IReadOnlyList<string> Problems(string prefix)
    {
        var problems = new List<string>();
        if (MaxLength is < 2 or > 200) problems.Add($"{prefix}:MaxLength must be between 2 and 200 (got {MaxLength})");
        if (!(MeanLength >= 1 && MeanLength <= MaxLength)) problems.Add($"{prefix}:MeanLength must be between 1 and MaxLength ({MaxLength}) (got {MeanLength})");
        if (!(LengthStd > 0) || !double.IsFinite(LengthStd)) problems.Add($"{prefix}:LengthStd must be positive (got {LengthStd})");
        if (PromptLetters is < 1 or > 26) problems.Add($"{prefix}:PromptLetters must be between 1 and 26 (got {PromptLetters})");
        if (FitSteps is < 0 or > 1_000_000) problems.Add($"{prefix}:FitSteps must be between 0 and 1000000 (got {FitSteps})");
        if (FitBatch is < 1 or > 4096) problems.Add($"{prefix}:FitBatch must be between 1 and 4096 (got {FitBatch})");
        if (!(FitLearningRate > 0 && FitLearningRate < 1)) problems.Add($"{prefix}:FitLearningRate must be in (0, 1) (got {FitLearningRate})");
        return problems;
    }
}
