namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Configuration of the simulated user population (the demo's stand-in for humans). Every default is
/// chosen so the embedded demo shows learning within minutes on 2 cores; see <see cref="Problems"/>.
/// </summary>
public sealed class SimulatedUsersOptions
{
    /// <summary>Seed of every random choice (prompts, pairs, noise): same seed and same inputs, same labels.</summary>
    public int Seed { get; set; } = 1234;

    public string PromptsTopic { get; set; } = "prefonline.prompts";

    public string FeedbackTopic { get; set; } = "prefonline.feedback";

    /// <summary>Prefix of generated prompt and label ids (<c>{prefix}-p-00000001</c>, <c>{prefix}-l-00000001</c>).</summary>
    public string IdPrefix { get; set; } = "sim";

    /// <summary>
    /// Run id inserted in every id (<c>{prefix}-{run}-p-00000001</c>) so a restarted simulation never reuses
    /// ids a long-running worker still remembers (its duplicate window would dead-letter them). Null: the
    /// start time, yyyyMMddHHmmss UTC. Tests set it for fully deterministic records.
    /// </summary>
    public string? RunId { get; set; }

    /// <summary>Prompt production rate (default 10/s). Production waits when the transport applies backpressure.</summary>
    public double PromptsPerSecond { get; set; } = 10;

    /// <summary>Stop producing prompts after this many (null: never).</summary>
    public long? MaxPrompts { get; set; }

    /// <summary>Prompt texts, drawn uniformly (default: a built-in list of short prompts).</summary>
    public IList<string> Prompts { get; set; } = new List<string>(DefaultPrompts);

    /// <summary>The hidden preference spec (<see cref="HiddenPreferences.Parse"/>; default <c>shorter</c>).</summary>
    public string Preference { get; set; } = HiddenPreferences.DefaultSpec;

    /// <summary>The preference after the shift (null: the reverse of <see cref="Preference"/>).</summary>
    public string? ShiftedPreference { get; set; }

    /// <summary>Shift the preference this long after the simulation starts (null: no time-based shift).</summary>
    public TimeSpan? ShiftAfter { get; set; }

    /// <summary>Shift the preference after this many labels (deterministic; null: no label-count shift). The first condition met triggers.</summary>
    public long? ShiftAfterLabels { get; set; }

    public LabelMode LabelMode { get; set; } = LabelMode.Pairs;

    /// <summary>Bradley–Terry temperature in nats (default 1): P(a ≻ b) = σ((U(a) − U(b)) / T); 0 = always the better one.</summary>
    public double Temperature { get; set; } = 1.0;

    /// <summary>Probability that a pair's label is flipped after the choice (default 0): careless clicks.</summary>
    public double FlipProbability { get; set; }

    /// <summary>Standard deviation of Gaussian noise added to ratings, in nats (default 0.5).</summary>
    public double RatingNoiseStd { get; set; } = 0.5;

    /// <summary>Fraction of prompts whose rollouts get labeled at all (default 1).</summary>
    public double LabelFraction { get; set; } = 1.0;

    /// <summary>Rollouts expected per prompt (the generator's K); a group is labeled when it is complete (default 4).</summary>
    public int GroupSize { get; set; } = 4;

    /// <summary>An incomplete group is labeled anyway this long after its first rollout (default 2 s).</summary>
    public TimeSpan GroupTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Preference pairs drawn per labeled group (default 1).</summary>
    public int PairsPerGroup { get; set; } = 1;

    /// <summary>Human latency: labels are produced this long after the group is complete (default 0).</summary>
    public TimeSpan LabelDelay { get; set; } = TimeSpan.Zero;

    /// <summary>Incomplete groups remembered at most; the oldest is labeled early beyond that (default 10,000).</summary>
    public int MaxPendingGroups { get; set; } = 10_000;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(PromptsTopic)) problems.Add("PromptsTopic is required");
        if (string.IsNullOrWhiteSpace(FeedbackTopic)) problems.Add("FeedbackTopic is required");
        if (string.IsNullOrWhiteSpace(IdPrefix) || Contracts.ContractRules.CheckId(IdPrefix) is not null) problems.Add("IdPrefix must be a non-empty printable id");
        if (!double.IsFinite(PromptsPerSecond) || PromptsPerSecond <= 0 || PromptsPerSecond > 100_000) problems.Add($"PromptsPerSecond must be in (0, 100000] (got {PromptsPerSecond})");
        if (RunId is not null && (RunId.Length == 0 || Contracts.ContractRules.CheckId(RunId) is not null)) problems.Add("RunId must be a non-empty printable id when set");
        if (MaxPrompts is < 0) problems.Add($"MaxPrompts must be >= 0 (got {MaxPrompts})");
        if (Prompts.Count == 0) problems.Add("Prompts must hold at least one prompt");
        foreach (var (spec, name) in new[] { (Preference, nameof(Preference)), (ShiftedPreference, nameof(ShiftedPreference)) })
        {
            if (spec is null) continue;
            try
            {
                HiddenPreferences.Parse(spec);
            }
            catch (FormatException e)
            {
                problems.Add($"{name}: {e.Message}");
            }
        }
        if (ShiftAfter is { } after && after <= TimeSpan.Zero) problems.Add("ShiftAfter must be positive");
        if (ShiftAfterLabels is < 1) problems.Add("ShiftAfterLabels must be >= 1");
        if (!Enum.IsDefined(LabelMode)) problems.Add($"LabelMode must be Pairs, Ratings or Both (got {LabelMode})");
        if (!double.IsFinite(Temperature) || Temperature < 0) problems.Add($"Temperature must be >= 0 (got {Temperature})");
        if (FlipProbability is < 0 or > 0.5 || double.IsNaN(FlipProbability)) problems.Add($"FlipProbability must be in [0, 0.5] (got {FlipProbability})");
        if (!double.IsFinite(RatingNoiseStd) || RatingNoiseStd < 0) problems.Add($"RatingNoiseStd must be >= 0 (got {RatingNoiseStd})");
        if (LabelFraction is < 0 or > 1 || double.IsNaN(LabelFraction)) problems.Add($"LabelFraction must be in [0, 1] (got {LabelFraction})");
        if (GroupSize is < 1 or > 1024) problems.Add($"GroupSize must be in 1..1024 (got {GroupSize})");
        if (GroupTimeout <= TimeSpan.Zero) problems.Add("GroupTimeout must be positive");
        if (PairsPerGroup is < 1 or > 1024) problems.Add($"PairsPerGroup must be in 1..1024 (got {PairsPerGroup})");
        if (LabelDelay < TimeSpan.Zero) problems.Add("LabelDelay must be >= 0");
        if (MaxPendingGroups < 1) problems.Add("MaxPendingGroups must be >= 1");
        return problems;
    }

    /// <summary>Short everyday prompts for a byte-level model (the reference corpus should answer such prompts at ordinary lengths).</summary>
    public static IReadOnlyList<string> DefaultPrompts { get; } =
    [
        "Q: How are you today?\nA:", "Q: What is your favourite colour?\nA:", "Q: Describe the weather.\nA:",
        "Q: What did you eat for breakfast?\nA:", "Q: Tell me about your day.\nA:", "Q: What is a good book?\nA:",
        "Q: Where would you like to travel?\nA:", "Q: What makes a good friend?\nA:", "Q: How do you relax?\nA:",
        "Q: What is the best season?\nA:", "Q: Name an animal you like.\nA:", "Q: What do you do on weekends?\nA:",
        "Q: What is your favourite food?\nA:", "Q: Describe your home town.\nA:", "Q: What music do you enjoy?\nA:",
        "Q: What is a hobby of yours?\nA:",
    ];
}
