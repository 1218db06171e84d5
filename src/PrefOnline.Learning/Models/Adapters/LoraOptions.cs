namespace PrefOnline.Learning.Models.Adapters;

/// <summary>
/// LoRA (Hu et al. 2021) hyper-parameters, named as PEFT's LoraConfig: each targeted projection W gets
/// a trainable low-rank update (α/r)·B·A beside the frozen W. Defaults: rank 8, α 16, no dropout, every
/// attention and MLP projection of the family (GPT-2: c_attn, c_proj, c_fc; Llama family: q_proj, k_proj,
/// v_proj, o_proj, gate_proj, up_proj, down_proj).
/// </summary>
public sealed record LoraOptions
{
    /// <summary>PEFT's r: the rank of the update (A is [r, in], B is [out, r]).</summary>
    public int Rank { get; init; } = 8;

    /// <summary>PEFT's lora_alpha: the update is scaled by Alpha / Rank.</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>PEFT's lora_dropout: dropout on the adapter's input (training mode only), in [0, 1).</summary>
    public double Dropout { get; init; }

    /// <summary>PEFT's target_modules: the last name segment of each projection to adapt (c_proj adapts
    /// both GPT-2's attention and MLP output projections, as in PEFT). Empty: every attention and MLP
    /// projection of the model's family.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [];

    /// <summary>Alpha / Rank: what B·A is multiplied by.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>Every problem at once, one line per key ("Rank: …"), or an empty list.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Rank < 1) problems.Add($"{nameof(Rank)}: must be at least 1 (got {Rank})");
        if (!(Alpha > 0) || !double.IsFinite(Alpha)) problems.Add($"{nameof(Alpha)}: must be a positive finite number (got {Alpha})");
        if (!(Dropout >= 0 && Dropout < 1)) problems.Add($"{nameof(Dropout)}: must be in [0, 1) (got {Dropout})");
        if (TargetModules is null) problems.Add($"{nameof(TargetModules)}: must be a list of module names (empty for the default)");
        else
        {
            var blank = TargetModules.Count(string.IsNullOrWhiteSpace);
            if (blank > 0) problems.Add($"{nameof(TargetModules)}: {blank} empty name(s)");
            var duplicates = TargetModules.Where(n => !string.IsNullOrWhiteSpace(n)).GroupBy(n => n, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            if (duplicates.Count > 0) problems.Add($"{nameof(TargetModules)}: listed twice: {string.Join(", ", duplicates)}");
            var dotted = TargetModules.Where(n => n is not null && (n.Contains('.') || n.Contains('*'))).ToList();
            if (dotted.Count > 0) problems.Add($"{nameof(TargetModules)}: give a projection's own name (e.g. q_proj), not a path or pattern: {string.Join(", ", dotted)}");
        }
        return problems;
    }

    /// <summary>Throws one <see cref="ArgumentException"/> listing every problem, one per line.</summary>
    public LoraOptions Validated()
    {
        var problems = Problems();
        return problems.Count == 0 ? this : throw new ArgumentException("invalid LoRA options:" + Environment.NewLine + string.Join(Environment.NewLine, problems));
    }
}
