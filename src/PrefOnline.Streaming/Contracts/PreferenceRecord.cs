namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// <c>prefonline.preference.v1</c> (topic <c>prefonline.feedback</c>): a labeler preferred <see cref="Chosen"/>
/// over <see cref="Rejected"/> as completions of <see cref="Prompt"/>.
/// <code>{"schema":"prefonline.preference.v1","id":"l-9","prompt":"Hi","chosen":"Hello!","rejected":"Go away.","rollout_ids":["r-1","r-2"]}</code>
/// </summary>
/// <param name="Id">Label id, unique per topic.</param>
/// <param name="RolloutIds">Optional join keys to the rollouts that were compared, exactly
/// <c>[chosen rollout id, rejected rollout id]</c>, distinct; absent when the pair did not come from our rollouts.</param>
public sealed record PreferenceRecord(string Id, string Prompt, string Chosen, string Rejected, PreferenceRolloutIds? RolloutIds = null) : StreamRecord
{
    public override string Schema => SchemaNames.PreferenceV1;

    public string Id { get; } = ContractRules.RequireId(Id, nameof(Id));

    public string Prompt { get; } = ContractRules.RequireText(Prompt, nameof(Prompt));

    public string Chosen { get; } = ContractRules.RequireText(Chosen, nameof(Chosen));

    /// <summary>Must differ from <see cref="Chosen"/>: an identical pair carries no preference.</summary>
    public string Rejected { get; } = ContractRules.RequireText(Rejected, nameof(Rejected)) == Chosen
        ? throw new ArgumentException("rejected must differ from chosen", nameof(Rejected))
        : Rejected;
}
