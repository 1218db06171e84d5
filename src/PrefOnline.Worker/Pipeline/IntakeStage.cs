using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// One input topic's front door inside a pipeline epoch: runs a <see cref="ValidatingIntake"/> (replays
/// skipped, bad records dead-lettered with their reason, counted) and hands valid records to a channel bounded by
/// count and by bytes (<see cref="SizedChannel{T}"/>; a validated record costs its raw bytes plus up to twice as much
/// again for its parsed text). When the channel is full the intake stops reading, the source's own bounded buffer
/// fills, and the consumer stops fetching: backpressure all the way to the broker.
/// </summary>
public sealed class IntakeStage(string name, ValidatingIntake intake, int capacity, long maxBytes, ILogger logger)
{
    private readonly SizedChannel<ValidatedRecord> channel = new(capacity, maxBytes, CostOf);

    /// <summary>
    /// Bytes a validated record holds while it waits: its raw record (value, key, headers) and the strings parsed from it —
    /// at most two bytes (UTF-16) per byte of JSON text — and the objects around them.
    /// </summary>
    public static long CostOf(ValidatedRecord record) => Streaming.Kafka.KafkaSourceOptions.RecordOverheadBytes + 3 * record.Source.Size;

    public string Name { get; } = name;

    public ChannelReader<ValidatedRecord> Records => channel.Reader;

    /// <summary>Reads until cancelled (intake stops) or the source ends; then completes the channel.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var record in intake.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                await channel.WriteAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            channel.TryComplete();
            logger.LogDebug("Intake {Name} stopped ({Replays} replays skipped)", Name, intake.Replays);
        }
    }
}
