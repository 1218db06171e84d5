namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// The <c>schema</c> value every record carries (src/PrefOnline.Streaming/README.md, "Contracts"). A schema name is
/// <c>prefonline.&lt;kind&gt;.v&lt;major&gt;</c>; a breaking change gets a new major, so a v1 consumer
/// rejects v2 records as <c>unknown-schema</c> instead of misreading them.
/// </summary>
public static class SchemaNames
{
    public const string PromptV1 = "prefonline.prompt.v1";
    public const string PreferenceV1 = "prefonline.preference.v1";
    public const string RatingV1 = "prefonline.rating.v1";
    public const string RolloutV1 = "prefonline.rollout.v1";
    public const string PolicyV1 = "prefonline.policy.v1";

    /// <summary>Every schema this build understands.</summary>
    public static IReadOnlyList<string> All { get; } = [PromptV1, PreferenceV1, RatingV1, RolloutV1, PolicyV1];

    /// <summary>What the prompts topic accepts.</summary>
    public static IReadOnlyList<string> PromptTopic { get; } = [PromptV1];

    /// <summary>What the feedback topic accepts (pairs and ratings may be mixed).</summary>
    public static IReadOnlyList<string> FeedbackTopic { get; } = [PreferenceV1, RatingV1];

    /// <summary>What the rollouts topic accepts (read back by labelers, e.g. the simulated users).</summary>
    public static IReadOnlyList<string> RolloutTopic { get; } = [RolloutV1];

    /// <summary>What the policy topic accepts.</summary>
    public static IReadOnlyList<string> PolicyTopic { get; } = [PolicyV1];
}
