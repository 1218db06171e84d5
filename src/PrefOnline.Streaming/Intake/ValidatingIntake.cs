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
/// unabsorbed valid record nor a bad record whose dead letter is not durable.
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
    private readonly DeadLetterRouter deadLetters;
    private readonly OffsetTracker tracker;
    private readonly StreamingMetrics metrics;
    private readonly ILogger logger;
    private long replays;

    public ValidatingIntake(IRecordSource source, RecordValidator validator, DeadLetterRouter deadLetters, OffsetTracker tracker, StreamingMetrics metrics, ILogger<ValidatingIntake>? logger = null)
    {
        this.source = source ?? throw new ArgumentNullException(nameof(source));
        this.validator = validator ?? throw new ArgumentNullException(nameof(validator));
        this.deadLetters = deadLetters ?? throw new ArgumentNullException(nameof(deadLetters));
        this.tracker = tracker ?? throw new ArgumentNullException(nameof(tracker));
        this.metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
    }

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
                    await deadLetters.RouteAsync(record, result.Failure, cancellationToken).ConfigureAwait(false);
                    tracker.Complete(record);
                }
            }
        }
    }
}
