namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// <c>prefonline.rollout.v1</c> (topic <c>prefonline.rollouts</c>, produced by the generator): one sampled completion.
/// <code>{"schema":"prefonline.rollout.v1","id":"r-1","prompt_id":"p-42","prompt":"Hi","completion":"Hello!","policy_version":7,"logprob":-12.5,"finish_reason":"eos"}</code>
/// </summary>
/// <param name="Id">Rollout id, unique per topic; labels refer to it (<c>rollout_id(s)</c>).</param>
/// <param name="PromptId">The id of the prompt record it answers.</param>
/// <param name="PolicyVersion">The policy version that sampled it (0 = the initial/reference policy).</param>
/// <param name="Logprob">Behaviour log-probability of the whole completion under that policy, in nats: the sum
/// of per-token log-probs, so finite and &lt;= 0.</param>
/// <param name="FinishReason">Optional: why sampling ended — <c>eos</c> (the policy chose to end: the end-of-sequence
/// token is part of what it sampled), <c>stop</c> (a stop string) or <c>length</c> (cut at the token limit). A
/// learner trains the end-of-sequence token only for <c>eos</c>; absent means <c>eos</c> (older producers).</param>
public sealed record RolloutRecord(string Id, string PromptId, string Prompt, string Completion, long PolicyVersion, double Logprob, string? FinishReason = null) : StreamRecord
{
    public const string EndOfSequence = "eos";
    public const string StopString = "stop";
    public const string Length = "length";

    public static IReadOnlyList<string> FinishReasons { get; } = [EndOfSequence, StopString, Length];

    public string? FinishReason { get; } = FinishReason is null || FinishReasons.Contains(FinishReason)
        ? FinishReason
        : throw new ArgumentOutOfRangeException(nameof(FinishReason), FinishReason, "finish_reason must be eos, stop or length");

    /// <summary>Whether the completion ended with the end-of-sequence token the policy sampled.</summary>
    public bool EndedWithEndOfSequence => FinishReason is null or EndOfSequence;

    public override string Schema => SchemaNames.RolloutV1;

    public string Id { get; } = ContractRules.RequireId(Id, nameof(Id));

    public string PromptId { get; } = ContractRules.RequireId(PromptId, nameof(PromptId));

    public string Prompt { get; } = ContractRules.RequireText(Prompt, nameof(Prompt));

    public string Completion { get; } = ContractRules.RequireText(Completion, nameof(Completion));

    public long PolicyVersion { get; } = PolicyVersion >= 0 ? PolicyVersion : throw new ArgumentOutOfRangeException(nameof(PolicyVersion), PolicyVersion, "policy_version must be >= 0");

    public double Logprob { get; } = ContractRules.RequireFinite(Logprob, nameof(Logprob)) <= 0
        ? Logprob
        : throw new ArgumentOutOfRangeException(nameof(Logprob), Logprob, "logprob is a log-probability: it must be <= 0");
}
