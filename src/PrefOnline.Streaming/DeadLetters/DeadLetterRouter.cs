using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.DeadLetters;

/// <summary>
/// Sends refused records to the dead-letter topic with their original bytes and the headers of
/// <see cref="DeadLetterHeaders"/>, counts them (<c>prefonline_messages_total{topic, result=dead_letter}</c> and
/// <c>prefonline_dead_letters_total{topic, reason}</c>),
/// and returns only once the dead letter is durable, so the caller may then advance past the record.
/// </summary>
/// <remarks>
/// Failure policy: a transient sink failure (broker down, open circuit) is retried with back-off until
/// it succeeds or the caller cancels (the intake stalls: nothing is skipped, nothing lost). A permanent
/// failure (e.g. the dead-letter topic refuses the size) is answered with a pointer dead letter: same
/// key and headers, empty value, <c>forward-error</c> saying why; the original remains at its source
/// position. If even that fails permanently, the exception reaches the caller (fatal: stop the host).
/// </remarks>
public sealed class DeadLetterRouter
{
    private readonly IRecordSink sink;
    private readonly StreamingMetrics metrics;
    private readonly ILogger logger;
    private readonly TimeSpan maxBackoff;

    public DeadLetterRouter(IRecordSink sink, string deadLetterTopic, StreamingMetrics metrics, ILogger<DeadLetterRouter>? logger = null, TimeSpan? maxBackoff = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentException.ThrowIfNullOrWhiteSpace(deadLetterTopic);
        ArgumentNullException.ThrowIfNull(metrics);
        this.sink = sink;
        this.metrics = metrics;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        this.maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(5);
        Topic = deadLetterTopic;
    }

    /// <summary>The dead-letter topic.</summary>
    public string Topic { get; }

    /// <summary>The dead letter for <paramref name="record"/>: original key and value, original headers then ours.</summary>
    public OutgoingRecord BuildDeadLetter(ConsumedRecord record, ValidationFailure failure, string? forwardError = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(failure);
        var headers = new List<RecordHeader>(record.Headers.Count + 7);
        headers.AddRange(record.Headers);
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.Reason, failure.Reason));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.Detail, Truncate(failure.Detail)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceTopic, record.Topic));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourcePartition, record.Partition.Partition.ToString(CultureInfo.InvariantCulture)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceOffset, record.Offset.ToString(CultureInfo.InvariantCulture)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceTimestamp, record.Timestamp.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)));
        if (forwardError is not null) headers.Add(RecordHeader.Utf8(DeadLetterHeaders.ForwardError, Truncate(forwardError)));
        return new OutgoingRecord(Topic, record.Key, forwardError is null ? record.Value : [], headers);
    }

    /// <summary>Dead-letters <paramref name="record"/> and counts it; returns when the dead letter is durable.</summary>
    /// <exception cref="OperationCanceledException">Cancelled while the sink was failing; the record is not dead-lettered (do not advance past it).</exception>
    /// <exception cref="StreamingException">Permanent failure even for the pointer dead letter (fatal).</exception>
    public async Task<DeliveredRecord> RouteAsync(ConsumedRecord record, ValidationFailure failure, CancellationToken cancellationToken)
    {
        var deadLetter = BuildDeadLetter(record, failure);
        var delivered = await ProduceUntilDurableAsync(deadLetter, record, failure, cancellationToken).ConfigureAwait(false);
        metrics.CountDeadLetter(record.Topic, failure.Reason);
        logger.LogWarning("Dead-lettered {Source} as {Reason}: {Detail}", record.ToString(), failure.Reason, failure.Detail);
        return delivered;
    }

    private async Task<DeliveredRecord> ProduceUntilDurableAsync(OutgoingRecord deadLetter, ConsumedRecord record, ValidationFailure failure, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await sink.ProduceAsync(deadLetter, cancellationToken).ConfigureAwait(false);
            }
            catch (StreamingException e) when (e.IsTransient)
            {
                logger.LogWarning("Dead letter for {Source} not delivered yet ({Error}); retrying in {Backoff}", record.ToString(), e.Message, backoff);
                await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, maxBackoff.Ticks));
            }
            catch (StreamingException e) when (deadLetter.Value.Length > 0)
            {
                logger.LogError("Dead letter for {Source} refused permanently ({Error}); sending a pointer without the original bytes", record.ToString(), e.Message);
                deadLetter = BuildDeadLetter(record, failure, forwardError: e.Message);
            }
        }
    }

    private static string Truncate(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= DeadLetterHeaders.MaxDetailLength ? line : line[..(DeadLetterHeaders.MaxDetailLength - 1)] + "…";
    }
}
