using System.Globalization;
using Microsoft.Extensions.Options;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>One clear line per invalid setting, named by its configuration key (Checkpoints:KeepLast ...).</summary>
public sealed class CheckpointOptionsValidator : IValidateOptions<CheckpointOptions>
{
    public const int MaxKeepLast = 10_000;
    public const int MaxRetryCount = 20;
    public static readonly TimeSpan MaxRetryBaseDelay = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan MaxRetryMaxDelay = TimeSpan.FromMinutes(10);
    public const int MaxInterval = 100_000;
    public static readonly TimeSpan MaxIntervalTime = TimeSpan.FromDays(1);

    public ValidateOptionsResult Validate(string? name, CheckpointOptions options)
    {
        var problems = Problems(options);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    /// <summary>The same rules without DI: an empty list when the options are usable.</summary>
    public static IReadOnlyList<string> Problems(CheckpointOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string s = CheckpointOptions.SectionName;
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Directory))
            problems.Add($"{s}:Directory must name a directory (got an empty value)");
        else if (options.Directory.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
            problems.Add($"{s}:Directory contains a character that cannot be in a path");
        if (options.KeepLast is < 1 or > MaxKeepLast)
            problems.Add(Invariant($"{s}:KeepLast must be between 1 and {MaxKeepLast} (got {options.KeepLast})"));
        if (options.RetryCount is < 0 or > MaxRetryCount)
            problems.Add(Invariant($"{s}:RetryCount must be between 0 and {MaxRetryCount} (got {options.RetryCount})"));
        if (options.RetryBaseDelay < TimeSpan.Zero || options.RetryBaseDelay > MaxRetryBaseDelay)
            problems.Add(Invariant($"{s}:RetryBaseDelay must be between 00:00:00 and {MaxRetryBaseDelay:c} (got {options.RetryBaseDelay:c})"));
        if (options.RetryMaxDelay < options.RetryBaseDelay || options.RetryMaxDelay > MaxRetryMaxDelay)
            problems.Add(Invariant($"{s}:RetryMaxDelay must be between RetryBaseDelay ({options.RetryBaseDelay:c}) and {MaxRetryMaxDelay:c} (got {options.RetryMaxDelay:c})"));
        if (options.Interval is < 1 or > MaxInterval)
            problems.Add(Invariant($"{s}:Interval must be between 1 and {MaxInterval} updates (got {options.Interval})"));
        if (options.IntervalTime < TimeSpan.Zero || options.IntervalTime > MaxIntervalTime)
            problems.Add(Invariant($"{s}:IntervalTime must be between 00:00:00 (off) and {MaxIntervalTime:c} (got {options.IntervalTime:c})"));
        return problems;
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem; for code that builds options by hand.</summary>
    public static void ThrowIfInvalid(CheckpointOptions options)
    {
        var problems = Problems(options);
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(options));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
