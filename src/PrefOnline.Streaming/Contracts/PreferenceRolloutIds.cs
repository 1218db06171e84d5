namespace PrefOnline.Streaming.Contracts;

/// <summary>The rollouts a preference compared: JSON <c>"rollout_ids": [chosen, rejected]</c>.</summary>
public sealed record PreferenceRolloutIds(string Chosen, string Rejected)
{
    public string Chosen { get; } = ContractRules.RequireId(Chosen, nameof(Chosen));

    public string Rejected { get; } = ContractRules.RequireId(Rejected, nameof(Rejected)) == Chosen
        ? throw new ArgumentException("the two rollout ids must differ", nameof(Rejected))
        : Rejected;
}
