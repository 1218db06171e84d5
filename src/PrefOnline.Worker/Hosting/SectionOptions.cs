using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Streaming.Validation;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Guardrails;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Pipeline;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// The one place that says which validator checks which configuration section. The host registers these
/// for ValidateOnStart, and <see cref="ConfigurationCheck"/> runs the very same registered validators on its
/// strictly bound sections before anything starts (one line per key, exit code 2): a rule is written once,
/// in its section's validator, never a second time in the check.
/// </summary>
public static class SectionOptions
{
    /// <summary>Binds every section <c>prefonline run</c> reads and registers its validator (ValidateOnStart).</summary>
    public static IServiceCollection AddSectionOptions(this IServiceCollection services, IConfiguration configuration)
    {
        Add<WorkerOptions, WorkerOptionsValidator>(WorkerOptions.SectionName);
        Add<KafkaOptions, KafkaOptionsValidator>(KafkaOptions.SectionName);
        Add<ValidationLimits, ValidationLimitsValidator>(ValidationLimitsValidator.SectionName);
        Add<ModelOptions, ValidatedOptionsValidator<ModelOptions>>(ModelOptions.SectionName);
        Add<GenerationOptions, ValidatedOptionsValidator<GenerationOptions>>(GenerationOptions.SectionName);
        Add<ScoringOptions, ValidatedOptionsValidator<ScoringOptions>>(ScoringOptions.SectionName);
        Add<FeedbackOptions, ValidatedOptionsValidator<FeedbackOptions>>(FeedbackOptions.SectionName);
        Add<ReplayOptions, ValidatedOptionsValidator<ReplayOptions>>(ReplayOptions.SectionName);
        Add<LearnerOptions, ValidatedOptionsValidator<LearnerOptions>>(LearnerOptions.SectionName);
        Add<RewardTrainerOptions, ValidatedOptionsValidator<RewardTrainerOptions>>(RewardTrainerOptions.SectionName);
        Add<GuardrailOptions, GuardrailOptionsValidator>(GuardrailOptions.SectionName);
        Add<CheckpointOptions, CheckpointOptionsValidator>(CheckpointOptions.SectionName);
        Add<ObservabilityOptions, ObservabilityOptionsValidator>(ObservabilityOptions.SectionName);
        Add<PolicyDistributionOptions, ValidatedOptionsValidator<PolicyDistributionOptions>>(PolicyDistributionOptions.SectionName);
        Add<ServingOptions, ValidatedOptionsValidator<ServingOptions>>(ServingOptions.SectionName);
        Add<DemoOptions, ValidatedOptionsValidator<DemoOptions>>(DemoOptions.SectionName);
        return services;

        void Add<TOptions, TValidator>(string section) where TOptions : class where TValidator : class, IValidateOptions<TOptions>
        {
            services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
            // TryAddEnumerable: the feature extensions (AddPrefOnlineGuardrail, AddPrefOnlineObservability,
            // AddCheckpointOptions) register the same validator, which must still run once only.
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
        }
    }

    /// <summary>Every problem the registered validators of <typeparamref name="T"/> find, one line each.</summary>
    public static IEnumerable<string> Problems<T>(IServiceProvider validators, T options) where T : class =>
        validators.GetServices<IValidateOptions<T>>()
            .Select(validator => validator.Validate(Microsoft.Extensions.Options.Options.DefaultName, options))
            .Where(result => result.Failed)
            .SelectMany(result => result.Failures ?? [result.FailureMessage ?? $"{typeof(T).Name} is invalid"]);
}

/// <summary>Adapts <see cref="IValidatedOptions.Problems"/> to the options pipeline.</summary>
public sealed class ValidatedOptionsValidator<T> : IValidateOptions<T> where T : class, IValidatedOptions
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var problems = options.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

/// <summary>The <c>Validation</c> section (<see cref="ValidationLimits"/>, a Streaming type): its own rules, each line under the section's name.</summary>
public sealed class ValidationLimitsValidator : IValidateOptions<ValidationLimits>
{
    public const string SectionName = "Validation";

    public ValidateOptionsResult Validate(string? name, ValidationLimits options)
    {
        var problems = options.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Select(p => SectionName + ": " + p));
    }
}
