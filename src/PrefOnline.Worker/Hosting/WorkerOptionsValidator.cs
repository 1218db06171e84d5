using System.Globalization;
using Microsoft.Extensions.Options;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Hosting;

/// <summary>One line per invalid <c>Worker:*</c> setting, named by its key.</summary>
public sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        var problems = Problems(options);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static IReadOnlyList<string> Problems(WorkerOptions options)
    {
        const string s = WorkerOptions.SectionName;
        var problems = new List<string>();
        if (!Enum.IsDefined(options.Role)) problems.Add($"{s}:Role must be All, Generator or Learner (got {options.Role})");
        if (options.Duration is { } duration && duration < TimeSpan.Zero) problems.Add(F($"{s}:Duration must not be negative (got {duration:c})"));
        if (options.TensorThreads is < 0 or > 1024) problems.Add(F($"{s}:TensorThreads must be 0 (all cores) to 1024 (got {options.TensorThreads})"));
        if (options.ShutdownTimeout < TimeSpan.FromSeconds(1) || options.ShutdownTimeout > TimeSpan.FromHours(1))
            problems.Add(F($"{s}:ShutdownTimeout must be between 00:00:01 and 01:00:00 (got {options.ShutdownTimeout:c})"));
        if (options.CheckpointInterval < TimeSpan.FromSeconds(1) || options.CheckpointInterval > TimeSpan.FromDays(1))
            problems.Add(F($"{s}:CheckpointInterval must be between 00:00:01 and 1.00:00:00 (got {options.CheckpointInterval:c})"));
        if (options.StagingDirectory is { } staging && (staging.Trim().Length == 0 || staging.IndexOfAny(Path.GetInvalidPathChars()) >= 0))
            problems.Add($"{s}:StagingDirectory must be a usable directory path when set (got '{staging}')");
        if (PolicyDistribution.PolicyLocation.Problem(options.PolicyBaseUrl) is { } policyUrl) problems.Add($"{s}:PolicyBaseUrl {policyUrl}");
        return problems;
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
