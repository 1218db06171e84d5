using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.Training;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Objectives;
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

/// <summary>
/// Start-up validation of the whole configuration before anything starts: every section is bound
/// strictly (<see cref="SectionBinder"/>) and checked by the validator the host registers for it
/// (<see cref="SectionOptions"/>, the same one ValidateOnStart runs), then the rules across sections.
/// The result is one line per invalid setting, each naming its key (<c>prefonline run</c> prints them and
/// exits with code 2).
/// </summary>
public static class ConfigurationCheck
{
    /// <summary>Sections <c>prefonline run</c> reads; any other top-level section except Logging is reported as unknown.</summary>
    public static IReadOnlyList<string> Sections { get; } =
    [
        WorkerOptions.SectionName, KafkaOptions.SectionName, ValidationLimitsValidator.SectionName, ModelOptions.SectionName, GenerationOptions.SectionName,
        ScoringOptions.SectionName, FeedbackOptions.SectionName, ReplayOptions.SectionName, LearnerOptions.SectionName,
        RewardTrainerOptions.SectionName, GuardrailOptions.SectionName, CheckpointOptions.SectionName, ObservabilityOptions.SectionName,
        PolicyDistributionOptions.SectionName, ServingOptions.SectionName, DemoOptions.SectionName, "Logging",
    ];

    public static (WorkerSettings Settings, IReadOnlyList<string> Problems) Check(IConfiguration configuration)
    {
        var problems = new List<string>();
        foreach (var section in configuration.GetChildren())
        {
            if (!Sections.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
                problems.Add($"{section.Key} is not a known configuration section (known: {string.Join(", ", Sections)})");
        }

        // The validators ValidateOnStart runs (SectionOptions), applied here to the strictly bound sections.
        using var validators = new ServiceCollection().AddSectionOptions(configuration).BuildServiceProvider();
        var settings = new WorkerSettings(
            Bound<WorkerOptions>(WorkerOptions.SectionName),
            Bound<KafkaOptions>(KafkaOptions.SectionName),
            Bound<ValidationLimits>(ValidationLimitsValidator.SectionName),
            Bound<ModelOptions>(ModelOptions.SectionName),
            Bound<GenerationOptions>(GenerationOptions.SectionName),
            Bound<ScoringOptions>(ScoringOptions.SectionName),
            Bound<FeedbackOptions>(FeedbackOptions.SectionName),
            Bound<ReplayOptions>(ReplayOptions.SectionName),
            Bound<LearnerOptions>(LearnerOptions.SectionName),
            Bound<RewardTrainerOptions>(RewardTrainerOptions.SectionName),
            Bound<GuardrailOptions>(GuardrailOptions.SectionName),
            Bound<CheckpointOptions>(CheckpointOptions.SectionName),
            Bound<ObservabilityOptions>(ObservabilityOptions.SectionName),
            Bound<PolicyDistributionOptions>(PolicyDistributionOptions.SectionName),
            Bound<ServingOptions>(ServingOptions.SectionName),
            Bound<DemoOptions>(DemoOptions.SectionName));

        if (!settings.Embedded && settings.Kafka.DeliveryTimeout > settings.Worker.ShutdownTimeout)
            problems.Add($"Kafka:DeliveryTimeout ({settings.Kafka.DeliveryTimeout:c}) must not exceed Worker:ShutdownTimeout ({settings.Worker.ShutdownTimeout:c}): on a stop during a broker outage the producer waits that long for its last deliveries");
        if (settings.Embedded && settings.Worker.Role != WorkerRole.All)
            problems.Add($"Worker:Role {WorkerRoles.Name(settings.Worker.Role)} needs Kafka (Kafka:BootstrapServers): the embedded transport only runs role all");
        if (settings.Generation.SamplesPerPrompt < 2 && ObjectiveCatalog.Find(settings.Learner.Objective) is { Pairwise: true } && settings.Worker.Role != WorkerRole.Generator
            && settings.Learner.HumanPairsPerUpdate == 0)
            problems.Add($"Generation:SamplesPerPrompt must be at least 2 for objective {settings.Learner.Objective} without human pairs (on-policy pairs compare samples of one prompt) (got {settings.Generation.SamplesPerPrompt})");
        var maxAbsReward = settings.Validation.MaxAbsReward;
        if (double.IsFinite(settings.Reward.RatingMin) && double.IsFinite(settings.Reward.RatingMax)
            && Math.Max(Math.Abs(settings.Reward.RatingMin), Math.Abs(settings.Reward.RatingMax)) > maxAbsReward)
            problems.Add($"Reward:RatingMin/RatingMax [{settings.Reward.RatingMin}, {settings.Reward.RatingMax}] reach beyond Validation:MaxAbsReward ({maxAbsReward}): ratings on the scale would be refused; narrow the scale or raise the limit");
        problems.AddRange(PolicySurfaceProblems(settings));
        problems.AddRange(ServingProblems(settings));
        // Role all samples from the learner's own adapted policy, which the fused decoder cannot run (it reads the base weights
        // only); generators of the other roles merge each version's adapter into its base as they load it (StoredPolicy.LoadWeights)
        // and decode the plain model with any backend.
        if (settings.Learner.Adapter is not null && settings.Worker.Role == WorkerRole.All && settings.Model.Decoder == FusedPolicyDecoder.BackendName)
            problems.Add("Model:Decoder fused cannot sample from a policy with LoRA adapters (Learner:Adapter), which Worker:Role all generates with: use auto (picks torchsharp for it) or torchsharp");
        if (FusedOnAStoredPolicyOfAnotherFamily(settings) is { } fusedProblem) problems.Add(fusedProblem);
        if (settings.Kafka.MaxBufferedBytes > 0 && settings.Kafka.MaxBufferedBytes < settings.Validation.MaxRecordBytes)
            problems.Add($"Kafka:MaxBufferedBytes ({settings.Kafka.MaxBufferedBytes}) must hold at least one record of Validation:MaxRecordBytes ({settings.Validation.MaxRecordBytes})");
        return (settings, problems);

        T Bound<T>(string section) where T : class, new()
        {
            var before = problems.Count;
            var value = SectionBinder.Bind<T>(configuration, section, problems);
            if (problems.Count == before) problems.AddRange(SectionOptions.Problems(validators, value));
            return value;
        }
    }

    /// <summary>
    /// What a learner's versions hold, for the serving publishers: with <c>Learner:Adapter</c> a PEFT adapter (and its base
    /// as reference.safetensors), else full weights (<see cref="VersionExporter.KindOf"/> reads the same kind
    /// from each version's files).
    /// </summary>
    public static ServingExportKind LearnerExportKind(WorkerSettings settings) =>
        settings.Learner.Adapter is null ? ServingExportKind.Full : ServingExportKind.Adapter;

    /// <summary>
    /// The fused decoder runs GPT-2 only. Model:InitialPolicy's family is checked with the Model section, but once the store
    /// holds a checkpoint the worker resumes from it and never reads InitialPolicy: a Llama-family store is refused here, at
    /// start, instead of when the first batch is decoded. Generators load their policy from the policy topic, not the store.
    /// A store that cannot be read is left to the load at start, which reports (or falls back past) a broken version.
    /// </summary>
    private static string? FusedOnAStoredPolicyOfAnotherFamily(WorkerSettings settings)
    {
        if (settings.Model.Decoder != FusedPolicyDecoder.BackendName || settings.Worker.Role == WorkerRole.Generator) return null;
        var store = settings.Checkpoints.Directory;
        if (string.IsNullOrWhiteSpace(store) || !Directory.Exists(store)) return null;
        string? modelType;
        try
        {
            modelType = StoredPolicy.ReadConfig(store)?.ModelType;
        }
        catch (Exception e) when (e is InvalidCheckpointException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return modelType is null or "gpt2"
            ? null
            : $"Model:Decoder the fused decoder runs GPT-2 only, but Checkpoints:Directory {store} holds a {modelType} policy, which the worker resumes from: use auto or torchsharp";
    }

    /// <summary>Publishers run on the learner only; vLLM's runtime API loads adapters only.</summary>
    private static IEnumerable<string> ServingProblems(WorkerSettings settings)
    {
        var publishers = settings.Serving.Publishers;
        if (publishers.Count == 0) yield break;
        if (settings.Worker.Role == WorkerRole.Generator)
        {
            yield return $"{ServingOptions.SectionName}:{nameof(ServingOptions.Publishers)} is set, but Worker:Role generator publishes no policy versions: configure the publishers on the learner";
            yield break;
        }
        for (var i = 0; i < publishers.Count; i++)
        {
            if (publishers[i]?.Type == ServingPublisherType.Vllm && LearnerExportKind(settings) != ServingExportKind.Adapter)
                yield return $"{ServingOptions.SectionName}:{nameof(ServingOptions.Publishers)}:{i}:{nameof(ServingPublisherOptions.Type)} vllm loads LoRA adapters through vLLM's runtime API, but this learner trains every weight (no LoRA adapter): use sglang or directory for full weights";
        }
    }

    /// <summary>
    /// Who may fetch the weights (docs/OPERATIONS.md, "Security"). A learner that publishes its own URL
    /// (<c>Worker:PolicyBaseUrl</c>) serves every current version's weights on <c>PolicyDistribution:Port</c>, and a generator
    /// with a base URL fetches from it: both need the token, unless <c>PolicyDistribution:AllowUnauthenticated</c> says
    /// otherwise on purpose. The embedded demo may serve without one on a loopback address only.
    /// </summary>
    private static IEnumerable<string> PolicySurfaceProblems(WorkerSettings settings)
    {
        var distribution = settings.PolicyDistribution;
        var hasBaseUrl = !string.IsNullOrWhiteSpace(settings.Worker.PolicyBaseUrl);
        if (distribution.HasToken || distribution.AllowUnauthenticated) yield break;
        const string fix = "give a token file from a Kubernetes Secret (PolicyDistribution:TokenFile, or PolicyDistribution:Token), or set PolicyDistribution:AllowUnauthenticated=true to accept that anyone who reaches the port can download the weights";
        if (settings.Worker.Role == WorkerRole.Generator)
        {
            if (hasBaseUrl) yield return $"PolicyDistribution:TokenFile is required: this generator fetches policies from Worker:PolicyBaseUrl ({settings.Worker.PolicyBaseUrl}), which serves them only to token holders; {fix}";
        }
        else if (hasBaseUrl && !settings.Embedded)
        {
            yield return $"PolicyDistribution:TokenFile is required: this learner publishes Worker:PolicyBaseUrl ({settings.Worker.PolicyBaseUrl}) and serves the weights of every current version on {distribution.BindAddress}:{distribution.Port}; {fix}";
        }
        else if (settings.ServesPolicies && !distribution.BindsLoopback)
        {
            yield return $"PolicyDistribution:BindAddress {distribution.BindAddress} would serve the demo's weights without authentication beyond this machine: bind 127.0.0.1, or {fix}";
        }
    }
}
