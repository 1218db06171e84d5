using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Intake;

/// <summary>
/// One input topic's front door: reads a source, skips replays, validates, dead-letters what fails and
/// yields what passes, keeping the <see cref="OffsetTracker"/> exact.
/// </summary>
/// <remarks>
/// For every record, in delivery order: <see cref="OffsetTracker.Begin"/> (false: a replay of something
/// already absorbed or in flight, dropped silently); validation; on failure the dead letter is made
/// durable and the record is completed in the tracker here; on success it is counted <c>ok</c> and
/// yielded, and the CALLER completes it once absorbed. So a checkpoint's offsets never pass an
/// unabsorbed valid record nor a bad record whose dead letter is not durable. A record the validator could
/// not judge (<see cref="ReasonCodes.ValidatorError"/>: an unexpected exception) is dead-lettered like any
/// other refusal and logged as an error with the exception; it never faults the intake.
/// <para>
/// <see cref="SkippingRefused"/> builds an intake that does not dead-letter: refused records are counted
/// (<c>prefonline_messages_total{result="skipped"}</c>, <c>prefonline_skipped_records_total{topic,reason}</c>),
/// logged and completed. It is for topics every consumer reads from their start (the policy topic): the
/// record stays readable at its position there, while a dead letter per consumer and per restart would
/// duplicate it without bound.
/// </para>
/// <code>
/// await foreach (var item in intake.ReadAllAsync(ct))
/// {
///     Absorb(item.Record);
///     tracker.Complete(item.Source);
/// }
/// </code>
/// </remarks>
public sealed class ValidatingIntake
{
    private readonly IRecordSource source;
    private readonly RecordValidator validator;
    private readonly DeadLetterRouter? deadLetters;
    private readonly OffsetTracker tracker;
    private readonly StreamingMetrics metrics;
    private readonly ILogger logger;
    private long replays;

    public ValidatingIntake(IRecordSource source, RecordValidator validator, DeadLetterRouter deadLetters, OffsetTracker tracker, StreamingMetrics metrics, ILogger? logger = null)
        : this(source, validator, tracker, metrics, logger, deadLetters ?? throw new ArgumentNullException(nameof(deadLetters)))
    {
    }

    private ValidatingIntake(IRecordSource source, RecordValidator validator, OffsetTracker tracker, StreamingMetrics metrics, ILogger? logger, DeadLetterRouter? deadLetters)
    {
        this.source = source ?? throw new ArgumentNullException(nameof(source));
        this.validator = validator ?? throw new ArgumentNullException(nameof(validator));
        this.deadLetters = deadLetters;
        this.tracker = tracker ?? throw new ArgumentNullException(nameof(tracker));
        this.metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        this.logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// An intake that skips refused records instead of dead-lettering them: counted as <c>skipped</c> with
    /// their reason, logged with their position, completed in the tracker. For topics whose consumers all
    /// read from the start (see the remarks).
    /// </summary>
    public static ValidatingIntake SkippingRefused(IRecordSource source, RecordValidator validator, OffsetTracker tracker, StreamingMetrics metrics, ILogger? logger = null) =>
        new(source, validator, tracker, metrics, logger, deadLetters: null);

    /// <summary>Replayed records dropped so far (already absorbed or in flight).</summary>
    public long Replays => Interlocked.Read(ref replays);

    /// <summary>Valid records until the source completes or <paramref name="cancellationToken"/> fires. Iterate once.</summary>
    public async IAsyncEnumerable<ValidatedRecord> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reader = source.Records;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.TryRead(out var record))
            {
                if (!tracker.Begin(record))
                {
                    Interlocked.Increment(ref replays);
                    logger.LogDebug("Skipped replay of {Record}", record.ToString());
                    continue;
                }
                var result = validator.Validate(record);
                if (result.IsValid)
                {
                    metrics.CountAccepted(record.Topic);
                    yield return new ValidatedRecord(result.Record, record);
                }
                else
                {
                    var failure = result.Failure;
                    if (failure.Exception is { } error)
                    {
                        logger.LogError(error, "Validator error on {Source}: {ExceptionType} (refused as {Reason}, not a stage failure)", record.ToString(), error.GetType().FullName, failure.Reason);
                    }
                    if (deadLetters is not null)
                    {
                        await deadLetters.RouteAsync(record, failure, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        metrics.CountSkipped(record.Topic, failure.Reason);
                        logger.LogWarning("Skipped {Source} as {Reason}: {Detail} (not dead-lettered: every consumer reads this topic from its start; the record stays at its position)",
                            record.ToString(), failure.Reason, failure.Detail);
                    }
                    tracker.Complete(record);
                }
            }
        }
    }
}
