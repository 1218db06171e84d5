using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Streaming.Validation;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Hosting;

/// <summary>Every configuration section of <c>prefonline run</c>, bound and validated (see <see cref="ConfigurationCheck"/>).</summary>
public sealed record WorkerSettings(
    WorkerOptions Worker,
    KafkaOptions Kafka,
    ValidationLimits Validation,
    ModelOptions Model,
    GenerationOptions Generation,
    ScoringOptions Scoring,
    FeedbackOptions Feedback,
    ReplayOptions Replay,
    LearnerOptions Learner,
    RewardTrainerOptions Reward,
    GuardrailOptions Guardrails,
    CheckpointOptions Checkpoints,
    ObservabilityOptions Observability,
    PolicyDistributionOptions PolicyDistribution,
    ServingOptions Serving,
    DemoOptions Demo)
{
    public LearningStateSettings LearningState => new(Worker, Model, Generation, Scoring, Replay, Learner, Reward);

    /// <summary>
    /// The limits the input topics are validated with: <see cref="Validation"/>'s, plus the reward model's rating
    /// scale (<c>Reward:RatingMin</c>/<c>RatingMax</c>), so a rating the reward model cannot use is dead-lettered as
    /// <c>out-of-range</c> at intake instead of being consumed and silently dropped later.
    /// </summary>
    public ValidationLimits InputValidation => Validation.WithRatingScale(Reward.RatingMin, Reward.RatingMax);

    /// <summary>True when no Kafka broker is configured: the in-process transport and simulated users.</summary>
    public bool Embedded => Kafka.IsEmbedded;

    /// <summary>
    /// True when this process serves its checkpoints' policies on the /policy port: a learner (or role all) whose policy
    /// events name its own URL (<c>Worker:PolicyBaseUrl</c>), and the embedded demo. A learner whose events name files on a
    /// shared volume opens no such port.
    /// </summary>
    public bool ServesPolicies => Worker.Role != WorkerRole.Generator && (!string.IsNullOrWhiteSpace(Worker.PolicyBaseUrl) || Embedded);
}
