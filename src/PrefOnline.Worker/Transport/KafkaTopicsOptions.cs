namespace PrefOnline.Worker.Transport;

/// <summary>Topic names (<c>Kafka:Topics:*</c>); the defaults are listed in config/README.md. Used by the embedded transport too.</summary>
public sealed class KafkaTopicsOptions
{
    /// <summary>In: <c>prefonline.prompt.v1</c>.</summary>
    public string Prompts { get; set; } = "prefonline.prompts";

    /// <summary>In: <c>prefonline.preference.v1</c> and <c>prefonline.rating.v1</c>.</summary>
    public string Feedback { get; set; } = "prefonline.feedback";

    /// <summary>Out (role all, generator); in (role learner): <c>prefonline.rollout.v1</c>.</summary>
    public string Rollouts { get; set; } = "prefonline.rollouts";

    /// <summary>Out (learner, all); in (generator): <c>prefonline.policy.v1</c>.</summary>
    public string Policy { get; set; } = "prefonline.policy";

    /// <summary>Out: refused records, original bytes plus reason headers.</summary>
    public string DeadLetter { get; set; } = "prefonline.dlq";

    public IReadOnlyList<string> All => [Prompts, Feedback, Rollouts, Policy, DeadLetter];
}
