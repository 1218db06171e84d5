namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// <c>prefonline.rating.v1</c> (topic <c>prefonline.feedback</c>): a scalar reward for one completion.
/// <code>{"schema":"prefonline.rating.v1","id":"l-10","prompt":"Hi","completion":"Hello!","reward":0.8,"rollout_id":"r-1"}</code>
/// </summary>
/// <param name="Reward">A finite number; its scale is the labeler's (the reward model is fit to it). NaN, ±Infinity and
/// numbers that overflow a double are rejected, as are magnitudes above the validator's limit.</param>
/// <param name="RolloutId">Optional join key to the rated rollout.</param>
public sealed record RatingRecord(string Id, string Prompt, string Completion, double Reward, string? RolloutId = null) : StreamRecord
{
    public override string Schema => SchemaNames.RatingV1;

    public string Id { get; } = ContractRules.RequireId(Id, nameof(Id));

    public string Prompt { get; } = ContractRules.RequireText(Prompt, nameof(Prompt));

    public string Completion { get; } = ContractRules.RequireText(Completion, nameof(Completion));

    public double Reward { get; } = ContractRules.RequireFinite(Reward, nameof(Reward));

    public string? RolloutId { get; } = RolloutId is null ? null : ContractRules.RequireId(RolloutId, nameof(RolloutId));
}
