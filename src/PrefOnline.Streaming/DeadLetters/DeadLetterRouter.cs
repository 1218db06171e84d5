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
/// failure (e.g. the dead-letter topic refuses the size) is answered with a pointer dead letter
/// (<see cref="BuildPointer"/>): only our headers (<c>reason</c>, <c>detail</c>, the source coordinates,
/// <c>forward-error</c> saying why and what was left out), the original key only when it is at most
/// <see cref="MaxPointerKeyBytes"/>, an empty value; the original remains at its source position. Every
/// part of a pointer is bounded (a few KiB in all), so no record — whatever its value, key or headers —
/// can make its own dead letter unwritable. If even the pointer fails permanently (the dead-letter topic
/// is missing or not writable: configuration, not data), the exception reaches the caller (fatal: stop the host).
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

    /// <summary>Longest original key a pointer dead letter keeps, in bytes; a longer key is left out (and said so in <c>forward-error</c>).</summary>
    public const int MaxPointerKeyBytes = 1024;

    /// <summary>The dead letter for <paramref name="record"/>: original key and value, original headers then ours.</summary>
    public OutgoingRecord BuildDeadLetter(ConsumedRecord record, ValidationFailure failure)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(failure);
        var headers = new List<RecordHeader>(record.Headers.Count + 6);
        headers.AddRange(record.Headers);
        AddOurHeaders(headers, record, failure);
        return new OutgoingRecord(Topic, record.Key, record.Value, headers);
    }

    /// <summary>
    /// The pointer dead letter written when the dead-letter topic refused <see cref="BuildDeadLetter"/> permanently:
    /// empty value, none of the original headers, the key only when at most <see cref="MaxPointerKeyBytes"/>, and our
    /// headers with <c>forward-error</c> = <paramref name="forwardError"/> plus what was left out. Bounded whatever
    /// the original: reason, detail and forward-error are single lines of at most
    /// <see cref="DeadLetterHeaders.MaxDetailLength"/> characters, the rest are short numbers and the topic name.
    /// </summary>
    public OutgoingRecord BuildPointer(ConsumedRecord record, ValidationFailure failure, string forwardError)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(failure);
        ArgumentNullException.ThrowIfNull(forwardError);
        var keyLength = record.Key?.Length ?? 0;
        var keepKey = keyLength <= MaxPointerKeyBytes;
        var headerBytes = record.Headers.Sum(h => (long)System.Text.Encoding.UTF8.GetByteCount(h.Name) + h.Value.Length);
        var leftOut = record.ContentOmitted
            ? $"left out: the record ({record.Size} bytes of value, key and headers; the key is kept when at most {MaxPointerKeyBytes} bytes), never read into memory"
            : $"left out: the value ({record.Value.Length} bytes), the original headers ({record.Headers.Count}, {headerBytes} bytes)"
              + (keepKey ? "" : $", the key ({keyLength} bytes)");
        var headers = new List<RecordHeader>(7);
        AddOurHeaders(headers, record, failure);
        // What was left out comes first: the broker's message may be long, and the line is truncated at its end.
        var why = record.ContentOmitted ? forwardError : $"the dead-letter topic refused the record: {forwardError}";
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.ForwardError, Truncate($"{leftOut}; {why}")));
        return new OutgoingRecord(Topic, keepKey ? record.Key : null, [], headers);
    }

    private static void AddOurHeaders(List<RecordHeader> headers, ConsumedRecord record, ValidationFailure failure)
    {
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.Reason, failure.Reason));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.Detail, Truncate(failure.Detail)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceTopic, record.Topic));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourcePartition, record.Partition.Partition.ToString(CultureInfo.InvariantCulture)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceOffset, record.Offset.ToString(CultureInfo.InvariantCulture)));
        headers.Add(RecordHeader.Utf8(DeadLetterHeaders.SourceTimestamp, record.Timestamp.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>Dead-letters <paramref name="record"/> and counts it; returns when the dead letter is durable.</summary>
    /// <exception cref="OperationCanceledException">Cancelled while the sink was failing; the record is not dead-lettered (do not advance past it).</exception>
    /// <exception cref="StreamingException">Permanent failure even for the pointer dead letter (fatal).</exception>
    /// <remarks>
    /// A record its source did not read into memory (<see cref="ConsumedRecord.ContentOmitted"/>: larger than the size
    /// limit) gets a pointer dead letter at once: there is nothing to forward, and the original stays at its position.
    /// </remarks>
    public async Task<DeliveredRecord> RouteAsync(ConsumedRecord record, ValidationFailure failure, CancellationToken cancellationToken)
    {
        var deadLetter = record.ContentOmitted
            ? BuildPointer(record, failure, "the record exceeds the size limit, so the worker did not read it")
            : BuildDeadLetter(record, failure);
        var delivered = await ProduceUntilDurableAsync(deadLetter, record, failure, cancellationToken, isPointer: record.ContentOmitted).ConfigureAwait(false);
        metrics.CountDeadLetter(record.Topic, failure.Reason);
        logger.LogWarning("Dead-lettered {Source} as {Reason}: {Detail}", record.ToString(), failure.Reason, failure.Detail);
        return delivered;
    }

    private async Task<DeliveredRecord> ProduceUntilDurableAsync(OutgoingRecord deadLetter, ConsumedRecord record, ValidationFailure failure, CancellationToken cancellationToken, bool isPointer)
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
            catch (StreamingException e) when (!isPointer)
            {
                logger.LogError("Dead letter for {Source} refused permanently ({Error}); sending a pointer without the original value and headers", record.ToString(), e.Message);
                deadLetter = BuildPointer(record, failure, e.Message);
                isPointer = true;
            }
        }
    }

    private static string Truncate(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= DeadLetterHeaders.MaxDetailLength ? line : line[..(DeadLetterHeaders.MaxDetailLength - 1)] + "…";
    }
}
