using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The retry policy around checkpoint I/O (Polly 8): exponential backoff with jitter on transient I/O
/// faults only. Build your own pipeline from <see cref="CreateStrategyOptions"/> to add a circuit
/// breaker or observe retries, and hand it to the store or reader.
/// </summary>
public static class CheckpointRetry
{
    /// <summary>
    /// True for faults worth another try: an <see cref="IOException"/> (EIO, a flaky volume) except a full
    /// device (<see cref="IsOutOfSpace"/>) and those that name a fact that will not change: a missing file or
    /// directory, a path too long, an unexpected end of file (truncation = corruption). Corruption
    /// (<see cref="CheckpointCorruptException"/>), a held lock and caller bugs are never transient.
    /// </summary>
    public static bool IsTransient(Exception exception) =>
        exception is IOException
            and not FileNotFoundException
            and not DirectoryNotFoundException
            and not PathTooLongException
            and not EndOfStreamException
            and not CheckpointWriteException
            and not CheckpointCorruptException
        && !IsOutOfSpace(exception);

    /// <summary>
    /// True for a full device or quota (ENOSPC, EDQUOT), also wrapped: not retried blindly (waiting does not
    /// free space); the store deletes what retention may delete and tries once more.
    /// </summary>
    public static bool IsOutOfSpace(Exception exception) => PosixFileSystem.IsOutOfSpace(exception);

    public static RetryStrategyOptions CreateStrategyOptions(CheckpointOptions options, ILogger? logger = null)
    {
        CheckpointOptionsValidator.ThrowIfInvalid(options);
        return new RetryStrategyOptions
        {
            Name = "checkpoint-io",
            ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            MaxRetryAttempts = Math.Max(1, options.RetryCount),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.RetryBaseDelay,
            MaxDelay = options.RetryMaxDelay,
            OnRetry = arguments =>
            {
                logger?.LogWarning(arguments.Outcome.Exception,
                    "Checkpoint I/O failed (attempt {Attempt}); retrying in {DelayMs} ms",
                    arguments.AttemptNumber + 1, (long)arguments.RetryDelay.TotalMilliseconds);
                return default;
            },
        };
    }

    /// <summary>The default pipeline for these options (empty when RetryCount is 0).</summary>
    public static ResiliencePipeline CreatePipeline(CheckpointOptions options, ILogger? logger = null) =>
        options.RetryCount == 0
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder().AddRetry(CreateStrategyOptions(options, logger)).Build();
}
